// The raisin command-line program: `raisin train`, `raisin eval`, ... (see tools/cli/).
#include "tools/cli/cli.h"

int main(int argc, char** argv) { return raisin::cli::main(argc, argv); }
