// The CUDA backend's table: raisin::cuda kernels, memory from the CUDA caching allocator, copies on
// the current stream, CUDA graphs of that stream's work. Copies to the host wait for the stream (the caller reads the data next); every
// other operation is queued, the asynchronous copies too (pinned memory and fences: kernels/cuda/memory.h).
#include "engine/cuda/backend.h"

#include "engine/backend.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/graph.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/math_mode.h"
#include "kernels/cuda/memory.h"

namespace raisin {

namespace {

void* device_allocate(size_t bytes) { return cuda::device_allocator().allocate(bytes, cuda::current_stream()); }
void device_release(void* data, size_t) { cuda::device_allocator().free(data); }

void copy_to_device(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  RAISIN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cuda::current_stream()));
  // The host buffer may be reused as soon as we return (pageable memory is staged, but be explicit).
  RAISIN_CUDA_CHECK(cudaStreamSynchronize(cuda::current_stream()));
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  RAISIN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cuda::current_stream()));
  RAISIN_CUDA_CHECK(cudaStreamSynchronize(cuda::current_stream()));
}
void copy_on_device(void* dst, const void* src, size_t bytes) {
  if (bytes) RAISIN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda::current_stream()));
}
void zero(void* data, size_t bytes) {
  if (bytes) RAISIN_CUDA_CHECK(cudaMemsetAsync(data, 0, bytes, cuda::current_stream()));
}
void synchronize() { RAISIN_CUDA_CHECK(cudaStreamSynchronize(cuda::current_stream())); }
void release_pinned(void* data, size_t) { cuda::free_pinned(data); }

const Backend kCudaBackend{
    .name = "cuda",
    .allocate = &device_allocate,
    .release = &device_release,
    .copy_to_device = &copy_to_device,
    .copy_to_host = &copy_to_host,
    .copy_on_device = &copy_on_device,
    .zero = &zero,
    .synchronize = &synchronize,
    .allocate_pinned = &cuda::allocate_pinned,
    .release_pinned = &release_pinned,
    .copy_to_device_async = &cuda::copy_to_device_async,
    .copy_to_host_async = &cuda::copy_to_host_async,
    .fence = &cuda::fence,
    .fence_wait = &cuda::fence_wait,
    .set_allow_tf32 = &cuda::set_allow_tf32,
    .capture_graph = &cuda::capture_graph,
    .launch_graph = &cuda::launch_graph,
    .destroy_graph = &cuda::destroy_graph,
    .fill = &cuda::fill,
    .axpy = &cuda::axpy,
    .linear_forward = &cuda::linear_forward,
    .linear_backward = &cuda::linear_backward,
    .conv2d_workspace_floats = &cuda::conv2d_workspace_floats,
    .conv2d_forward = &cuda::conv2d_forward,
    .conv2d_backward = &cuda::conv2d_backward,
    .relu_forward = &cuda::relu_forward,
    .relu_backward = &cuda::relu_backward,
    .add_forward = &cuda::add_forward,
    .maxpool2d_forward = &cuda::maxpool2d_forward,
    .maxpool2d_backward = &cuda::maxpool2d_backward,
    .avgpool2d_forward = &cuda::avgpool2d_forward,
    .avgpool2d_backward = &cuda::avgpool2d_backward,
    .global_avgpool_forward = &cuda::global_avgpool_forward,
    .global_avgpool_backward = &cuda::global_avgpool_backward,
    .batchnorm2d_forward_train = &cuda::batchnorm2d_forward_train,
    .batchnorm2d_forward_infer = &cuda::batchnorm2d_forward_infer,
    .batchnorm2d_backward_train = &cuda::batchnorm2d_backward_train,
    .batchnorm2d_backward_infer = &cuda::batchnorm2d_backward_infer,
    .dropout_forward = &cuda::dropout_forward,
    .dropout_backward = &cuda::dropout_backward,
    .softmax_cross_entropy_forward = &cuda::softmax_cross_entropy_forward,
    .softmax_cross_entropy_backward = &cuda::softmax_cross_entropy_backward,
    .gather_batch = &cuda::gather_batch,
    .sgd_update = &cuda::sgd_update,
    .sgd_update_multi = &cuda::sgd_update_multi,
    .find_nonfinite = &cuda::find_nonfinite,
    .rais_features = &cuda::rais_features,
    .rais_distribution_workspace_doubles = &cuda::rais_distribution_workspace_doubles,
    .rais_distribution = &cuda::rais_distribution,
    .alias_workspace_doubles = &cuda::alias_workspace_doubles,
    .alias_build = &cuda::alias_build,
    .alias_draw = &cuda::alias_draw,
    .rais_record_draws = &cuda::rais_record_draws,
    .rais_observe = &cuda::rais_observe,
    .gain_ratio_update = &cuda::gain_ratio_update,
    .schedule_step = &cuda::schedule_step,
    .step_metrics = &cuda::step_metrics,
};

}  // namespace

std::string register_cuda_backend() {
  if (cuda::device_count() == 0) return cuda::no_device_reason();
  register_backend(Device::Kind::cuda, &kCudaBackend);
  return "";
}

}  // namespace raisin
