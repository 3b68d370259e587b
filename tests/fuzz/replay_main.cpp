// Replays inputs through a fuzz target without libFuzzer, so that every build (g++ included) runs the
// seed corpus and every past finding on every test run:
//   fuzz_replay_<target> CORPUS_DIR [MORE_DIR_OR_FILE...]
// Each file of CORPUS_DIR (which must hold at least one) and of each further folder, or each further
// file, goes through LLVMFuzzerTestOneInput once, in name order; further paths that do not exist are
// skipped (a target with no past finding has no regressions folder). A finding crashes the program.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> inputs_in(const fs::path& path) {
  std::vector<fs::path> files;
  if (fs::is_directory(path)) {
    for (const fs::directory_entry& e : fs::directory_iterator(path))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
  } else if (fs::is_regular_file(path)) {
    files.push_back(path);
  }
  return files;
}

void replay(const fs::path& file) {
  // Exactly the input's bytes on the heap, as libFuzzer passes them, so that a read past the end is caught.
  std::vector<uint8_t> input(fs::file_size(file));
  std::ifstream in(file, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(input.data()), std::streamsize(input.size()))) {
    std::fprintf(stderr, "cannot read %s\n", file.c_str());
    std::exit(2);
  }
  std::fprintf(stderr, "replaying %s (%zu bytes)\n", file.c_str(), input.size());
  LLVMFuzzerTestOneInput(input.data(), input.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [MORE_DIR_OR_FILE...]\n", argv[0]);
    return 2;
  }
  const std::vector<fs::path> corpus = inputs_in(argv[1]);
  if (corpus.empty()) {
    std::fprintf(stderr, "%s: no inputs in the corpus folder %s\n", argv[0], argv[1]);
    return 2;
  }
  size_t count = 0;
  for (int a = 1; a < argc; ++a)
    for (const fs::path& file : a == 1 ? corpus : inputs_in(argv[a])) replay(file), ++count;
  std::fprintf(stderr, "%zu inputs replayed without a finding\n", count);
  return 0;
}
