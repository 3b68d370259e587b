// The raisin command-line program: `raisin train`, `raisin eval`, ... (see tools/cli/). Built with CUDA,
// it installs the CUDA backend's loader, which probes for a GPU only when a command asks for one.
#include "tools/cli/cli.h"

#if RAISIN_WITH_CUDA
#include "engine/backend.h"
#include "engine/cuda/backend.h"
#endif

int main(int argc, char** argv) {
#if RAISIN_WITH_CUDA
  raisin::set_backend_loader(raisin::Device::Kind::cuda, &raisin::register_cuda_backend);
#endif
  return raisin::cli::main(argc, argv);
}
