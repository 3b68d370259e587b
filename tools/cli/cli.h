// The raisin command line: parses the subcommand and its flags and runs it. Returns the process exit
// status; errors are printed as one line on stderr.
#pragma once

namespace raisin::cli {

int main(int argc, char** argv);

}  // namespace raisin::cli
