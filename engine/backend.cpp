// The CPU backend's table and the registry of backends by device kind.
#include "engine/backend.h"

#include <atomic>
#include <cstring>

#include "engine/memory.h"

namespace raisin {

namespace {

void host_copy(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}
void host_zero(void* data, size_t bytes) {
  if (bytes) std::memset(data, 0, bytes);
}
void nothing_to_wait_for() {}
// The cpu's work is done when its call returns, so every fence has passed; tickets still increase.
std::atomic<uint64_t> fences_taken{0};
uint64_t next_fence() { return fences_taken.fetch_add(1, std::memory_order_relaxed) + 1; }
void fence_passed(uint64_t) {}

const Backend kCpuBackend{
    .name = "cpu",
    .allocate = &CpuAllocator::allocate,
    .release = &CpuAllocator::release,
    .copy_to_device = &host_copy,
    .copy_to_host = &host_copy,
    .copy_on_device = &host_copy,
    .zero = &host_zero,
    .synchronize = &nothing_to_wait_for,
    .allocate_pinned = &CpuAllocator::allocate,
    .release_pinned = &CpuAllocator::release,
    .copy_to_device_async = &host_copy,
    .copy_to_host_async = &host_copy,
    .fence = &next_fence,
    .fence_wait = &fence_passed,
    .set_allow_tf32 = nullptr,
    .capture_graph = nullptr,  // no graphs: the CPU runs each step's work as it is called
    .launch_graph = nullptr,
    .destroy_graph = nullptr,
    .fill = &cpu::fill,
    .axpy = &cpu::axpy,
    .linear_forward = &cpu::linear_forward,
    .linear_backward = &cpu::linear_backward,
    .conv2d_workspace_floats = &cpu::conv2d_workspace_floats,
    .conv2d_forward = &cpu::conv2d_forward,
    .conv2d_backward = &cpu::conv2d_backward,
    .relu_forward = &cpu::relu_forward,
    .relu_backward = &cpu::relu_backward,
    .add_forward = &cpu::add_forward,
    .maxpool2d_forward = &cpu::maxpool2d_forward,
    .maxpool2d_backward = &cpu::maxpool2d_backward,
    .avgpool2d_forward = &cpu::avgpool2d_forward,
    .avgpool2d_backward = &cpu::avgpool2d_backward,
    .global_avgpool_forward = &cpu::global_avgpool_forward,
    .global_avgpool_backward = &cpu::global_avgpool_backward,
    .batchnorm2d_forward_train = &cpu::batchnorm2d_forward_train,
    .batchnorm2d_forward_infer = &cpu::batchnorm2d_forward_infer,
    .batchnorm2d_backward_train = &cpu::batchnorm2d_backward_train,
    .batchnorm2d_backward_infer = &cpu::batchnorm2d_backward_infer,
    .dropout_forward = &cpu::dropout_forward,
    .dropout_backward = &cpu::dropout_backward,
    .softmax_cross_entropy_forward = &cpu::softmax_cross_entropy_forward,
    .softmax_cross_entropy_backward = &cpu::softmax_cross_entropy_backward,
    .gather_batch = &cpu::gather_batch,
    .sgd_update = &cpu::sgd_update,
    .sgd_update_multi = &cpu::sgd_update_multi,
    .find_nonfinite = &cpu::find_nonfinite,
    .rais_features = &cpu::rais_features,
    .rais_distribution_workspace_doubles = &cpu::rais_distribution_workspace_doubles,
    .rais_distribution = &cpu::rais_distribution,
    .alias_workspace_doubles = &cpu::alias_workspace_doubles,
    .alias_build = &cpu::alias_build,
    .alias_draw = &cpu::alias_draw,
    .rais_record_draws = &cpu::rais_record_draws,
    .rais_observe = &cpu::rais_observe,
    .gain_ratio_update = &cpu::gain_ratio_update,
    .schedule_step = &cpu::schedule_step,
    .step_metrics = &cpu::step_metrics,
};

const Backend* cuda_table = nullptr;
std::string (*cuda_loader)() = nullptr;

}  // namespace

const Backend& backend(Device device) {
  if (device.is_cpu()) return kCpuBackend;
  if (!cuda_table)
    throw error("no backend for ", device.str(), ": this program was built or started without the CUDA backend; "
                "use --device cpu, or build with CUDA (nvcc) and run on a machine with a GPU");
  return *cuda_table;
}

const Backend& cpu_backend() { return kCpuBackend; }

bool has_backend(Device::Kind kind) { return kind == Device::Kind::cpu || cuda_table != nullptr; }

void set_backend_loader(Device::Kind kind, std::string (*loader)()) {
  if (kind == Device::Kind::cpu) throw error("set_backend_loader: the cpu backend is built in");
  cuda_loader = loader;
}

std::string ensure_backend(Device::Kind kind) {
  if (has_backend(kind)) return "";
  if (!cuda_loader) return "this program has no CUDA backend (raisin was configured without CUDA: nvcc not found, or -DRAISIN_CUDA=OFF)";
  static const std::string reason = cuda_loader();  // probe the driver once
  return has_backend(kind) ? "" : reason;
}

void register_backend(Device::Kind kind, const Backend* table) {
  if (kind == Device::Kind::cpu) throw error("register_backend: the cpu backend is built in");
  cuda_table = table;
}

}  // namespace raisin
