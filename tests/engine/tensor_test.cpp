// Tensor metadata, views, checked access, the caching allocator and the per-step arena.
#include <gtest/gtest.h>

#include "engine/memory.h"
#include "engine/tensor.h"

namespace raisin {
namespace {

TEST(Tensor, ShapeAndNumel) {
  Tensor t = Tensor::zeros({2, 3, 4, 5});
  EXPECT_EQ(t.ndim(), 4);
  EXPECT_EQ(t.numel(), 120);
  EXPECT_EQ(t.size(-1), 5);
  EXPECT_EQ(t.shape().str(), "[2, 3, 4, 5]");
  EXPECT_EQ(t.str(), "[2, 3, 4, 5] f32 cpu");
  for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t.f32()[i], 0.0f);
  Tensor scalar = Tensor::zeros({});
  EXPECT_EQ(scalar.numel(), 1);
}

TEST(Tensor, ReshapeAndFlattenShareStorage) {
  Tensor t = Tensor::zeros({2, 3, 4});
  Tensor flat = t.flatten(1);
  EXPECT_EQ(flat.shape(), (Shape{2, 12}));
  EXPECT_EQ(flat.f32(), t.f32());
  Tensor inferred = t.reshape({-1, 4});
  EXPECT_EQ(inferred.shape(), (Shape{6, 4}));
  inferred.f32()[5] = 7.0f;
  EXPECT_EQ(t.f32()[5], 7.0f);
  EXPECT_EQ(t.flatten(0).shape(), (Shape{24}));
}

TEST(Tensor, BadReshapeNamesBothShapes) {
  Tensor t = Tensor::zeros({2, 3});
  try {
    t.reshape({4, 2});
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[4, 2]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(t.reshape({-1, -1}), Error);
  EXPECT_THROW(t.reshape({-1, 4}), Error);
  EXPECT_THROW(t.flatten(2), Error);
}

TEST(Tensor, DtypeIsChecked) {
  Tensor labels = Tensor::zeros({4}, DType::i32);
  EXPECT_NO_THROW(labels.i32());
  EXPECT_THROW(labels.f32(), Error);
  EXPECT_THROW(Tensor::zeros({4}).i32(), Error);
  EXPECT_THROW(Tensor().f32(), Error);
}

TEST(Tensor, CopyChecksShapes) {
  Tensor a = Tensor::zeros({3}), b = Tensor::empty({3}), c = Tensor::empty({4});
  b.fill(2.0f);
  a.copy_from(b);
  EXPECT_EQ(a.f32()[2], 2.0f);
  EXPECT_THROW(a.copy_from(c), Error);
}

TEST(Tensor, CudaTensorsCannotBeAllocatedWithoutABackend) {
  EXPECT_THROW(Tensor::empty({3}, DType::f32, Device::cuda()), Error);
}

TEST(CpuAllocator, ReusesFreedBlocks) {
  void* first = nullptr;
  {
    Tensor t = Tensor::empty({1000});
    first = t.f32();
  }
  const size_t allocations = CpuAllocator::stats().system_allocations;
  Tensor again = Tensor::empty({1000});
  EXPECT_EQ(again.f32(), first);
  EXPECT_EQ(CpuAllocator::stats().system_allocations, allocations);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(again.f32()) % CpuAllocator::kAlignment, 0u);
}

TEST(Arena, StaleTensorsThrowAfterReset) {
  Arena arena(1 << 16);
  Tensor t = Tensor::empty(arena, {16});
  EXPECT_NO_THROW(t.f32());
  arena.reset();
  EXPECT_THROW(t.f32(), Error);
}

TEST(Arena, GrowsOnceThenRepeatsAddresses) {
  Arena arena(256);
  auto step = [&] {
    std::vector<float*> addresses;
    for (int i = 0; i < 5; ++i) addresses.push_back(Tensor::empty(arena, {1000}).f32());
    arena.reset();
    return addresses;
  };
  step();  // overflows the 256-byte block
  EXPECT_GE(arena.capacity(), 5 * 4000u);
  const auto second = step(), third = step();
  EXPECT_EQ(second, third);
  for (float* p : second) EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % CpuAllocator::kAlignment, 0u);
}

}  // namespace
}  // namespace raisin
