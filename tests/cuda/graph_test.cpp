// raisin's CUDA graphs (kernels/cuda/graph.h), on the GPU and emulated: a captured step of kernels (fill,
// axpy, reduce_sum, conv2d through cuDNN or its emulated route, batchnorm forward and backward with their
// Scratch blocks) replayed N times leaves every buffer bit for bit as N eager runs do, and sees an input
// changed between replays; nothing runs during the capture; a body that synchronises or throws gives no
// graph and says why, with the stream usable afterwards; destroying a graph releases its capture pool.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/device.h"
#include "kernels/cuda/graph.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/memory.h"
#include "tests/cuda/parity.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

using CudaGraph = CudaParity;  // the same GPU-or-skip rule

// x [2, 3, 9, 8] * w [4, 3, 3, 3], padding 1 → y [2, 4, 9, 8], batch-normalised into z.
const kernels::Conv2dShape kConv{2, 3, 9, 8, 4, 3, 3, 1, 1, 1, 1};
const kernels::ImageShape kImage{2, 4, 9, 8};
const size_t kNx = size_t(2) * 3 * 9 * 8, kNw = size_t(4) * 3 * 3 * 3, kNy = size_t(kImage.numel());

// The buffers of one step, filled with the same values for every instance.
struct Step {
  DeviceBuffer<float> x{test::random_floats(kNx, 1)}, w{test::random_floats(kNw, 2)}, b{test::random_floats(4, 3)};
  DeviceBuffer<float> acc{std::vector<float>(kNx, 0.0f)}, sum{std::vector<float>(1, 0.0f)};
  DeviceBuffer<float> y{std::vector<float>(kNy, 0.0f)}, z{std::vector<float>(kNy, 0.0f)};
  DeviceBuffer<float> workspace{std::vector<float>(size_t(std::max<int64_t>(1, cuda::conv2d_workspace_floats(kConv))))};
  DeviceBuffer<float> gamma{test::random_floats(4, 4, 0.5f, 1.5f)}, beta{test::random_floats(4, 5)};
  DeviceBuffer<float> mean{std::vector<float>(4, 0.0f)}, invstd{std::vector<float>(4, 0.0f)};
  DeviceBuffer<float> running_mean{std::vector<float>(4, 0.0f)}, running_var{std::vector<float>(4, 1.0f)};
  DeviceBuffer<float> dz{test::random_floats(kNy, 6)}, dy{std::vector<float>(kNy, 0.0f)};
  DeviceBuffer<float> dgamma{std::vector<float>(4, 0.0f)}, dbeta{std::vector<float>(4, 0.0f)};

  // Queues the step on the current stream. acc, the running statistics, dgamma and dbeta carry over from
  // step to step; dy is cleared and accumulated into each time.
  void queue() {
    cuda::axpy(int64_t(kNx), 0.5f, x.ptr, acc.ptr);
    cuda::reduce_sum(int64_t(kNx), acc.ptr, sum.ptr);
    cuda::conv2d_forward(kConv, x.ptr, w.ptr, b.ptr, y.ptr, workspace.ptr);
    cuda::batchnorm2d_forward_train(kImage, 1e-5f, 0.1f, y.ptr, gamma.ptr, beta.ptr, z.ptr, mean.ptr, invstd.ptr,
                                    running_mean.ptr, running_var.ptr);
    cuda::fill(int64_t(kNy), 0.0f, dy.ptr);
    cuda::batchnorm2d_backward_train(kImage, y.ptr, gamma.ptr, mean.ptr, invstd.ptr, dz.ptr, dy.ptr, dgamma.ptr,
                                     dbeta.ptr);
  }

  // Every buffer the step writes, in one host vector.
  std::vector<float> outputs() const {
    std::vector<float> all;
    for (const DeviceBuffer<float>* buffer : {&acc, &sum, &y, &z, &mean, &invstd, &running_mean, &running_var, &dy,
                                              &dgamma, &dbeta}) {
      const std::vector<float> values = buffer->host();
      all.insert(all.end(), values.begin(), values.end());
    }
    return all;
  }
};

// Captures step.queue() into a graph; fails the test when it cannot.
void* capture(Step& step) {
  std::string why;
  void* graph = cuda::capture_graph([&] { step.queue(); }, why);
  EXPECT_NE(graph, nullptr) << why;
  EXPECT_EQ(why, "");
  return graph;
}

cudaStreamCaptureStatus current_capture_status() {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusActive;
  RAISIN_CUDA_CHECK(cudaStreamIsCapturing(cuda::current_stream(), &status));
  return status;
}

TEST_F(CudaGraph, ReplaysMatchEagerRunsBitForBitAndSeeChangedInputs) {
  constexpr int kRuns = 3;
  Step eager, replayed;
  for (int k = 0; k < kRuns; ++k) eager.queue();  // first: the vendor library's handles and plans get made

  const std::vector<float> before = replayed.outputs();
  void* graph = capture(replayed);
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(replayed.outputs(), before) << "the captured step ran during the capture";
  for (int k = 0; k < kRuns; ++k) cuda::launch_graph(graph);
  EXPECT_EQ(replayed.outputs(), eager.outputs());
  EXPECT_NE(replayed.outputs(), before);

  const std::vector<float> new_x = test::random_floats(kNx, 7);  // written in place, as a step's batch is
  RAISIN_CUDA_CHECK(cudaMemcpy(eager.x.ptr, new_x.data(), kNx * sizeof(float), cudaMemcpyHostToDevice));
  RAISIN_CUDA_CHECK(cudaMemcpy(replayed.x.ptr, new_x.data(), kNx * sizeof(float), cudaMemcpyHostToDevice));
  eager.queue();
  cuda::launch_graph(graph);
  EXPECT_EQ(replayed.outputs(), eager.outputs());
  cuda::destroy_graph(graph);
}

TEST_F(CudaGraph, ABodyThatSynchronisesOrThrowsGivesNoGraphAndRunsNothing) {
  const int64_t n = 1000;
  DeviceBuffer<float> y(std::vector<float>(n, 3.0f));
  cuda::CachingAllocator& allocator = cuda::device_allocator();
  const int64_t pooled = allocator.stats().bytes_pooled;
  const auto use_scratch = [&] { allocator.free(allocator.allocate(4096, cuda::current_stream())); };

  std::string why;
  void* graph = cuda::capture_graph(
      [&] {
        cuda::fill(n, 1.0f, y.ptr);
        use_scratch();
        RAISIN_CUDA_CHECK(cudaStreamSynchronize(cuda::current_stream()));
      },
      why);
  EXPECT_EQ(graph, nullptr);
  EXPECT_NE(why.find("cudaStreamSynchronize"), std::string::npos) << why;
  EXPECT_NE(why.find("cudaErrorStreamCapture"), std::string::npos) << why;
  EXPECT_EQ(current_capture_status(), cudaStreamCaptureStatusNone);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "errors are cleared";
  EXPECT_EQ(allocator.stats().bytes_pooled, pooled) << "the pool is released";
  EXPECT_EQ(y.host(), std::vector<float>(n, 3.0f)) << "the fill ran during the capture";

  graph = cuda::capture_graph(
      [&] {
        cuda::fill(n, 1.0f, y.ptr);
        use_scratch();
        throw std::runtime_error("the body gave up");
      },
      why);
  EXPECT_EQ(graph, nullptr);
  EXPECT_EQ(why, "the body gave up");
  EXPECT_EQ(current_capture_status(), cudaStreamCaptureStatusNone);
  EXPECT_EQ(allocator.stats().bytes_pooled, pooled);
  EXPECT_EQ(y.host(), std::vector<float>(n, 3.0f));

  cuda::fill(n, 1.0f, y.ptr);  // the stream runs work again
  RAISIN_CUDA_CHECK(cudaGetLastError());
  RAISIN_CUDA_CHECK(cudaStreamSynchronize(cuda::current_stream()));
  EXPECT_EQ(y.host(), std::vector<float>(n, 1.0f));
}

TEST_F(CudaGraph, DestroyReleasesThePoolAndReplaysNeedTheCaptureStream) {
  Step warm_up, step;
  warm_up.queue();
  const std::vector<float> one_step = warm_up.outputs();
  cuda::CachingAllocator& allocator = cuda::device_allocator();
  const cuda::AllocatorStats before = allocator.stats();
  void* graph = capture(step);
  ASSERT_NE(graph, nullptr);
  const cuda::AllocatorStats captured = allocator.stats();
  const int64_t kept = captured.bytes_pooled - before.bytes_pooled;
  EXPECT_GT(kept, 0) << "the batchnorm kernels' Scratch blocks are kept for the graph";

  cudaStream_t other = nullptr;
  RAISIN_CUDA_CHECK(cudaStreamCreate(&other));
  cuda::set_current_stream(other);
  EXPECT_THROW(cuda::launch_graph(graph), std::invalid_argument);
  cuda::set_current_stream(nullptr);  // back to the process's stream
  RAISIN_CUDA_CHECK(cudaStreamDestroy(other));

  cuda::launch_graph(graph);
  cuda::destroy_graph(graph);  // while the replay may still be queued
  const cuda::AllocatorStats released = allocator.stats();
  EXPECT_EQ(released.bytes_pooled, before.bytes_pooled);
  EXPECT_EQ(released.bytes_cached, captured.bytes_cached + kept);
  EXPECT_EQ(step.outputs(), one_step);
}

}  // namespace
}  // namespace raisin
