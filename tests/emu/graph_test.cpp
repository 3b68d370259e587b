// CUDA emulator self-tests for stream capture and graphs: work queued on a capturing stream (launches,
// cudaMemcpyAsync, cudaMemsetAsync) is recorded, not run, and each replay runs it in order on the memory as it
// is then; every call a capture cannot contain fails with the GPU's error, names itself and invalidates the
// capture, after which the stream works normally; allocation is allowed in Relaxed mode only; a kernel that
// fails during a replay is reported like a failed launch. (tests/cuda/graph_test.cpp tests raisin's graph
// service over this, on the GPU too.)
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cuda/compat.h"
#include "tests/cuda/parity.h"

namespace raisin {
namespace {

constexpr int kN = 300;

__global__ void add_kernel(int n, const float* x, float* y) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] += x[i];
}

__global__ void affine_kernel(int n, float a, float b, float* y) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] = a * y[i] + b;
}

constexpr int kFirstBarrierLine = __LINE__ + 3;
__global__ void divergent_kernel(float* y) {
  if (threadIdx.x < 40)
    __syncthreads();
  else
    __syncthreads();
  y[threadIdx.x] = 1.0f;
}

void expect_contains(const std::string& message, const std::string& part) {
  EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' missing from: " << message;
}

cudaStreamCaptureStatus capture_status(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  EXPECT_EQ(cudaStreamIsCapturing(stream, &status), cudaSuccess);
  return status;
}

// A stream of its own for each test; a capture a failed test left open is ended.
class EmuGraph : public ::testing::Test {
 protected:
  void SetUp() override { RAISIN_CUDA_CHECK(cudaStreamCreate(&stream)); }
  void TearDown() override {
    if (capture_status(stream) != cudaStreamCaptureStatusNone) {
      cudaGraph_t left = nullptr;
      cudaStreamEndCapture(stream, &left);
      if (left != nullptr) cudaGraphDestroy(left);
    }
    cudaGetLastError();
    cudaStreamDestroy(stream);
  }

  // y = 3·(0 + x) + 1 with x copied in from `in` and y copied out to `out`, queued on the stream.
  void queue_work(float* x, float* y, const float* in, float* out) {
    ASSERT_EQ(cudaMemcpyAsync(x, in, kN * sizeof(float), cudaMemcpyHostToDevice, stream), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(y, 0, kN * sizeof(float), stream), cudaSuccess);
    RAISIN_LAUNCH(add_kernel, 3, 128, 0, stream)(kN, x, y);
    RAISIN_CUDA_CHECK(cudaGetLastError());
    RAISIN_LAUNCH(affine_kernel, 3, 128, 0, stream)(kN, 3.0f, 1.0f, y);
    RAISIN_CUDA_CHECK(cudaGetLastError());
    ASSERT_EQ(cudaMemcpyAsync(out, y, kN * sizeof(float), cudaMemcpyDeviceToHost, stream), cudaSuccess);
  }

  cudaStream_t stream = nullptr;
};

std::vector<float> expected_output(const std::vector<float>& in) {
  std::vector<float> out(in.size());
  for (size_t i = 0; i < in.size(); ++i) out[i] = 3.0f * in[i] + 1.0f;
  return out;
}

TEST_F(EmuGraph, CapturedWorkRunsOnlyAtEachReplayInOrder) {
  std::vector<float> in(kN), out(kN, -7.0f);
  for (int i = 0; i < kN; ++i) in[i] = float(i % 17) - 5.0f;
  DeviceBuffer<float> x(kN), y(kN);

  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  EXPECT_EQ(capture_status(stream), cudaStreamCaptureStatusActive);
  queue_work(x.ptr, y.ptr, in.data(), out.data());
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(capture_status(stream), cudaStreamCaptureStatusNone);
  EXPECT_EQ(out, std::vector<float>(kN, -7.0f)) << "captured work ran during the capture";
  for (float v : y.host()) ASSERT_TRUE(std::isnan(v)) << "captured work ran during the capture";

  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphDestroy(graph), cudaSuccess);  // the executable graph stands on its own
  ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
  EXPECT_EQ(out, expected_output(in));

  for (int i = 0; i < kN; ++i) in[i] = float(i) * 0.25f;  // the replay reads the host memory as it is now
  ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
  EXPECT_EQ(out, expected_output(in));
  EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
}

// A call made during a capture, the error it must give, and a part of its message.
struct Prohibited {
  const char* call;
  std::function<cudaError_t(cudaStream_t, cudaEvent_t, cudaGraphExec_t, float*)> make;
  cudaError_t error;
};

TEST_F(EmuGraph, EachProhibitedCallFailsNamesItselfAndInvalidatesTheCapture) {
  std::vector<float> host(kN, 2.0f);
  DeviceBuffer<float> x(std::vector<float>(kN, 1.0f)), y(std::vector<float>(kN, 0.0f));
  cudaEvent_t event = nullptr;
  RAISIN_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  RAISIN_CUDA_CHECK(cudaEventRecord(event, stream));
  cudaGraphExec_t empty = nullptr;  // an executable graph of nothing, to launch during the capture
  {
    cudaGraph_t graph = nullptr;
    RAISIN_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    RAISIN_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    RAISIN_CUDA_CHECK(cudaGraphInstantiate(&empty, graph, 0));
    RAISIN_CUDA_CHECK(cudaGraphDestroy(graph));
  }
  float* const host_ptr = host.data();
  const Prohibited cases[] = {
      {"cudaMemcpy", [&](auto, auto, auto, float* d) { return cudaMemcpy(d, host_ptr, 64, cudaMemcpyHostToDevice); },
       cudaErrorStreamCaptureImplicit},
      {"cudaMemset", [](auto, auto, auto, float* d) { return cudaMemset(d, 0, 64); }, cudaErrorStreamCaptureImplicit},
      {"cudaMemsetAsync", [](auto, auto, auto, float* d) { return cudaMemsetAsync(d, 0, 64, nullptr); },
       cudaErrorStreamCaptureImplicit},
      {"cudaStreamSynchronize", [](cudaStream_t s, auto, auto, auto) { return cudaStreamSynchronize(s); },
       cudaErrorStreamCaptureUnsupported},
      {"cudaStreamSynchronize", [](auto, auto, auto, auto) { return cudaStreamSynchronize(nullptr); },
       cudaErrorStreamCaptureImplicit},
      {"cudaDeviceSynchronize", [](auto, auto, auto, auto) { return cudaDeviceSynchronize(); },
       cudaErrorStreamCaptureUnsupported},
      {"cudaEventSynchronize", [](auto, cudaEvent_t e, auto, auto) { return cudaEventSynchronize(e); },
       cudaErrorStreamCaptureUnsupported},
      {"cudaEventRecord", [](cudaStream_t s, cudaEvent_t e, auto, auto) { return cudaEventRecord(e, s); },
       cudaErrorStreamCaptureUnsupported},
      {"cudaGraphLaunch", [](cudaStream_t s, auto, cudaGraphExec_t g, auto) { return cudaGraphLaunch(g, s); },
       cudaErrorStreamCaptureUnsupported},
      {"cudaMalloc",
       [](auto, auto, auto, auto) {
         void* p = nullptr;
         return cudaMalloc(&p, 64);
       },
       cudaErrorStreamCaptureUnsupported},
      {"add_kernel",
       [](auto, auto, auto, float* d) {
         RAISIN_LAUNCH(add_kernel, 3, 128, 0, nullptr)(kN, d, d);  // on the legacy stream
         return cudaPeekAtLastError();
       },
       cudaErrorStreamCaptureImplicit},
  };
  for (const Prohibited& c : cases) {
    SCOPED_TRACE(c.call);
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
    RAISIN_LAUNCH(add_kernel, 3, 128, 0, stream)(kN, x.ptr, y.ptr);  // recorded
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);

    const cudaError_t error = c.make(stream, event, empty, x.ptr);
    EXPECT_EQ(error, c.error) << cudaGetErrorName(error);
    expect_contains(cudaGetErrorString(error), c.call);
    EXPECT_EQ(cudaGetLastError(), c.error);
    EXPECT_EQ(capture_status(stream), cudaStreamCaptureStatusInvalidated);
    EXPECT_EQ(cudaMemsetAsync(y.ptr, 0, 64, stream), cudaErrorStreamCaptureInvalidated) << "work after it is refused";
    EXPECT_EQ(cudaGetLastError(), cudaErrorStreamCaptureInvalidated);

    cudaGraph_t graph = reinterpret_cast<cudaGraph_t>(1);
    EXPECT_EQ(cudaStreamEndCapture(stream, &graph), cudaErrorStreamCaptureInvalidated);
    EXPECT_EQ(graph, nullptr);
    expect_contains(cudaGetErrorString(cudaErrorStreamCaptureInvalidated), c.call);
    EXPECT_EQ(cudaGetLastError(), cudaErrorStreamCaptureInvalidated);
    EXPECT_EQ(capture_status(stream), cudaStreamCaptureStatusNone);
    EXPECT_EQ(y.host(), std::vector<float>(kN, 0.0f)) << "nothing queued during the capture ran";
  }
  // The stream runs work at once again, and synchronising is allowed.
  RAISIN_LAUNCH(add_kernel, 3, 128, 0, stream)(kN, x.ptr, y.ptr);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  RAISIN_CUDA_CHECK(cudaStreamSynchronize(stream));
  RAISIN_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(y.host(), std::vector<float>(kN, 1.0f));
  RAISIN_CUDA_CHECK(cudaGraphExecDestroy(empty));
  RAISIN_CUDA_CHECK(cudaEventDestroy(event));
}

TEST_F(EmuGraph, AllocationIsAllowedInRelaxedModeOnly) {
  for (const cudaStreamCaptureMode mode : {cudaStreamCaptureModeGlobal, cudaStreamCaptureModeThreadLocal}) {
    ASSERT_EQ(cudaStreamBeginCapture(stream, mode), cudaSuccess);
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, 256), cudaErrorStreamCaptureUnsupported);
    EXPECT_EQ(p, nullptr);
    cudaGraph_t graph = nullptr;
    EXPECT_EQ(cudaStreamEndCapture(stream, &graph), cudaErrorStreamCaptureInvalidated);
    cudaGetLastError();
  }

  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed), cudaSuccess);
  void* device = nullptr;
  void* pinned = nullptr;
  EXPECT_EQ(cudaMalloc(&device, 256), cudaSuccess);
  EXPECT_EQ(cudaMallocHost(&pinned, 256), cudaSuccess);
  EXPECT_EQ(cudaFree(device), cudaSuccess);
  EXPECT_EQ(cudaFreeHost(pinned), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  ASSERT_EQ(cudaGraphDestroy(graph), cudaSuccess);
}

TEST_F(EmuGraph, OtherThreadsAreBoundByGlobalCapturesOnly) {
  const auto malloc_on_another_thread = [] {
    cudaError_t status = cudaSuccess;
    std::thread([&] {
      void* p = nullptr;
      status = cudaMalloc(&p, 256);
      if (status == cudaSuccess) cudaFree(p);
      cudaGetLastError();
    }).join();
    return status;
  };
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  EXPECT_EQ(malloc_on_another_thread(), cudaSuccess);
  EXPECT_EQ(capture_status(stream), cudaStreamCaptureStatusActive);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  ASSERT_EQ(cudaGraphDestroy(graph), cudaSuccess);

  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  EXPECT_EQ(malloc_on_another_thread(), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(capture_status(stream), cudaStreamCaptureStatusInvalidated);
  // A Global capture must be ended on the thread that began it.
  std::thread([&] {
    cudaGraph_t other = nullptr;
    EXPECT_EQ(cudaStreamEndCapture(stream, &other), cudaErrorStreamCaptureWrongThread);
  }).join();
  EXPECT_EQ(cudaStreamEndCapture(stream, &graph), cudaErrorStreamCaptureInvalidated);
  cudaGetLastError();
}

TEST_F(EmuGraph, MisusedCaptureCallsAreErrors) {
  cudaGraph_t graph = nullptr;
  EXPECT_EQ(cudaStreamBeginCapture(nullptr, cudaStreamCaptureModeRelaxed), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaStreamEndCapture(stream, &graph), cudaErrorIllegalState) << "the stream is not capturing";
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed), cudaSuccess);
  EXPECT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed), cudaErrorIllegalState);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusActive;
  EXPECT_EQ(cudaStreamIsCapturing(nullptr, &status), cudaErrorStreamCaptureImplicit);
  EXPECT_EQ(capture_status(stream), cudaStreamCaptureStatusActive) << "queries invalidate nothing";
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  EXPECT_EQ(cudaGraphInstantiate(nullptr, graph, 0), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGraphLaunch(nullptr, stream), cudaErrorInvalidResourceHandle);
  ASSERT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  cudaGetLastError();
}

TEST_F(EmuGraph, AKernelThatFailsDuringAReplayIsReportedAndStopsIt) {
  std::vector<float> out(kN, -1.0f);
  DeviceBuffer<float> y(std::vector<float>(kN, 5.0f));
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  RAISIN_LAUNCH(divergent_kernel, 1, 64, 0, stream)(y.ptr);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << "recording the launch succeeds";
  ASSERT_EQ(cudaMemcpyAsync(out.data(), y.ptr, kN * sizeof(float), cudaMemcpyDeviceToHost, stream), cudaSuccess);
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);

  EXPECT_EQ(cudaGraphLaunch(exec, stream), cudaErrorLaunchFailure);
  const std::string message = cudaGetErrorString(cudaErrorLaunchFailure);
  expect_contains(message, "divergent_kernel");
  expect_contains(message, "barrier divergence");
  expect_contains(message, "graph_test.cpp:" + std::to_string(kFirstBarrierLine));
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaErrorLaunchFailure) << "synchronising reports it, as after a launch";
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(out, std::vector<float>(kN, -1.0f)) << "the copy after the failed kernel did not run";
  RAISIN_CUDA_CHECK(cudaGraphExecDestroy(exec));
  RAISIN_CUDA_CHECK(cudaGraphDestroy(graph));
}

}  // namespace
}  // namespace raisin
