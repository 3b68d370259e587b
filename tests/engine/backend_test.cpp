// Dispatch by device (engine/backend.h) without a GPU: a stand-in "cuda" backend that keeps its memory
// on the host, in blocks it tracks, and counts every copy. Tensors, arenas, relocation, ops, autograd
// and the optimizer must route through it, move data only through its copies, and give the CPU's
// results bit for bit (it runs the CPU kernels).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <set>

#include "engine/backend.h"
#include "engine/layers.h"
#include "engine/memory.h"
#include "engine/optim.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

struct StandInDevice {
  static inline std::set<void*> blocks;  // memory this "device" handed out and has not taken back
  static inline size_t uploads = 0, downloads = 0;

  static void* allocate(size_t bytes) {
    void* p = std::aligned_alloc(64, (std::max<size_t>(bytes, 1) + 63) / 64 * 64);
    blocks.insert(p);
    return p;
  }
  static void release(void* p, size_t) {
    EXPECT_EQ(blocks.erase(p), 1u) << "released memory the device did not hand out";
    std::free(p);
  }
  static bool owns(const void* p) { return blocks.count(const_cast<void*>(p)) > 0; }
  static void upload(void* dst, const void* src, size_t bytes) {
    ++uploads;
    std::memcpy(dst, src, bytes);
  }
  static void download(void* dst, const void* src, size_t bytes) {
    ++downloads;
    std::memcpy(dst, src, bytes);
  }
};

class BackendDispatch : public ::testing::Test {
 protected:
  void SetUp() override {
    table_ = cpu_backend();
    table_.name = "stand-in";
    table_.allocate = &StandInDevice::allocate;
    table_.release = &StandInDevice::release;
    table_.copy_to_device = &StandInDevice::upload;
    table_.copy_to_host = &StandInDevice::download;
    register_backend(Device::Kind::cuda, &table_);
    StandInDevice::uploads = StandInDevice::downloads = 0;
  }
  void TearDown() override {
    register_backend(Device::Kind::cuda, nullptr);
    EXPECT_TRUE(StandInDevice::blocks.empty()) << StandInDevice::blocks.size() << " device blocks leaked";
  }
  Backend table_;
};

const Device kGpu = Device::cuda(0);

TEST_F(BackendDispatch, TensorsAllocateCopyAndFillThroughTheirDevice) {
  Tensor host = Tensor::empty({5, 3});
  for (int i = 0; i < 15; ++i) host.f32()[i] = float(i) - 7;
  {
    Tensor gpu = host.to(kGpu);
    EXPECT_EQ(gpu.device(), kGpu);
    EXPECT_TRUE(StandInDevice::owns(gpu.f32()));
    EXPECT_EQ(StandInDevice::uploads, 1u);
    Tensor back = gpu.to(Device::cpu());
    EXPECT_EQ(StandInDevice::downloads, 1u);
    EXPECT_EQ(std::memcmp(back.f32(), host.f32(), 15 * sizeof(float)), 0);
    gpu.fill(2.5f);
    EXPECT_EQ(gpu.to(Device::cpu()).f32()[14], 2.5f);
    Tensor zeros = Tensor::zeros({4}, DType::i32, kGpu);
    EXPECT_EQ(zeros.to(Device::cpu()).i32()[3], 0);
    EXPECT_NE(test::error_message([&] { zeros.fill(3.0f); }).find("only f32"), std::string::npos);
  }
  EXPECT_TRUE(StandInDevice::blocks.empty());
}

TEST_F(BackendDispatch, RelocateMovesSharedStorageForEveryHandle) {
  Tensor a = Tensor::zeros({8});
  Tensor b = a;  // a layer's buffer and the module's list share storage like this
  a.relocate(kGpu);
  EXPECT_EQ(b.device(), kGpu);
  EXPECT_TRUE(StandInDevice::owns(b.f32()));
  b.relocate(Device::cpu());
  EXPECT_TRUE(a.device().is_cpu());
  Arena arena(1024, kGpu);
  Tensor activation = Tensor::empty(arena, {4});
  EXPECT_EQ(activation.device(), kGpu);
  EXPECT_NE(test::error_message([&] { activation.relocate(Device::cpu()); }).find("arena"), std::string::npos);
}

// One SGD step of a small net gives the same parameters on the stand-in device as on the cpu, and the
// forward pass on the device never reads host memory for activations.
TEST_F(BackendDispatch, TrainingStepMatchesTheCpu) {
  auto make_net = [] {
    Rng rng(7);
    auto net = std::make_unique<Sequential>();
    net->add<Conv2d>(2, 3, 3, rng, Conv2dOptions{1, 1});
    net->add<BatchNorm2d>(3);
    net->add<ReLU>();
    net->add<MaxPool2d>(2);
    net->add<Flatten>();
    net->add<Linear>(3 * 3 * 3, 4, rng);
    return net;
  };
  const auto x_values = test::random_floats(5 * 2 * 6 * 6, 11);
  const auto labels = test::random_ints(5, 12, 4);
  auto step = [&](Module& net, Device device) {
    Sgd sgd(net.named_parameters(), SgdOptions{.momentum = 0.9f, .weight_decay = 1e-3f});
    Arena arena(0, device);
    Tape tape(&arena);
    Context ctx{.tape = &tape, .arena = &arena, .training = true};
    Tensor x = Tensor::empty({5, 2, 6, 6});
    std::copy(x_values.begin(), x_values.end(), x.f32());
    Tensor y = Tensor::empty({5}, DType::i32);
    std::copy(labels.begin(), labels.end(), y.i32());
    LossOutput loss = softmax_cross_entropy(ctx, net.forward(ctx, constant(x.to(device))), y.to(device), Tensor());
    EXPECT_EQ(loss.mean_loss->value.device(), device);
    sgd.zero_grad();
    tape.backward(loss.mean_loss);
    sgd.step(0.1f);
    for (const auto& [name, buffer] : sgd.state()) EXPECT_EQ(buffer.device(), device) << name;
  };
  auto cpu_net = make_net(), gpu_net = make_net();
  gpu_net->to(kGpu);
  for (const auto& [name, p] : gpu_net->named_parameters()) {
    EXPECT_TRUE(StandInDevice::owns(p->value.f32())) << name;
    EXPECT_TRUE(StandInDevice::owns(p->grad.f32())) << name;
  }
  for (const auto& [name, b] : gpu_net->named_buffers())
    EXPECT_EQ(StandInDevice::owns(b.dtype() == DType::f32 ? static_cast<void*>(b.f32()) : b.i64()),
              b.dtype() == DType::f32) << name;
  step(*cpu_net, Device::cpu());
  step(*gpu_net, kGpu);
  const auto cpu_state = cpu_net->state_dict(), gpu_state = gpu_net->state_dict();
  ASSERT_EQ(cpu_state.size(), gpu_state.size());
  for (size_t i = 0; i < cpu_state.size(); ++i) {
    const Tensor a = cpu_state[i].second, b = gpu_state[i].second.to(Device::cpu());
    if (a.dtype() == DType::f32) EXPECT_EQ(std::memcmp(a.f32(), b.f32(), a.numel() * sizeof(float)), 0) << cpu_state[i].first;
    else EXPECT_EQ(a.i64()[0], b.i64()[0]) << cpu_state[i].first;  // num_batches_tracked, kept on the cpu
  }
  gpu_net.reset();  // gives the device memory back before TearDown counts it
}

TEST_F(BackendDispatch, MixingDevicesIsAClearError) {
  Tensor x = Tensor::zeros({2, 3}, DType::f32, kGpu);
  Context ctx;
  Rng rng(1);
  Linear layer(3, 2, rng);  // on the cpu
  EXPECT_NE(test::error_message([&] { layer.forward(ctx, constant(x)); }).find("different devices"), std::string::npos);
  Arena host_arena;
  Context with_arena{.arena = &host_arena};
  EXPECT_NE(test::error_message([&] { relu(with_arena, constant(x)); }).find("arena is on cpu"), std::string::npos);
}

}  // namespace
}  // namespace raisin
