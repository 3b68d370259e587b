// Every op rejects a shape, dtype or device mismatch with a message naming the op and both shapes.
#include <gtest/gtest.h>

#include <functional>

#include "engine/ops.h"

namespace raisin {
namespace {

// Runs `call`, expects an Error, and checks that its message contains every fragment.
void expect_error(const std::function<void()>& call, const std::vector<std::string>& fragments) {
  try {
    call();
    ADD_FAILURE() << "no exception; expected one mentioning " << fragments.front();
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const auto& f : fragments) EXPECT_NE(message.find(f), std::string::npos) << "'" << f << "' not in: " << message;
  }
}

Var zeros(const Shape& shape) { return constant(Tensor::zeros(shape)); }

TEST(OpErrors, LinearShapes) {
  Context ctx;
  expect_error([&] { linear(ctx, zeros({4, 12}), zeros({5, 10}), nullptr); }, {"linear", "[4, 12]", "[5, 10]"});
  expect_error([&] { linear(ctx, zeros({4, 10}), zeros({5, 10}), zeros({6})); }, {"linear", "[6]", "[5, 10]"});
  expect_error([&] { linear(ctx, zeros({4, 2, 5}), zeros({5, 10}), nullptr); }, {"linear", "[4, 2, 5]"});
}

TEST(OpErrors, Conv2dShapes) {
  Context ctx;
  expect_error([&] { conv2d(ctx, zeros({2, 3, 8, 8}), zeros({4, 2, 3, 3}), nullptr, {}); },
               {"conv2d", "[2, 3, 8, 8]", "[4, 2, 3, 3]"});
  expect_error([&] { conv2d(ctx, zeros({2, 3, 2, 2}), zeros({4, 3, 5, 5}), nullptr, {}); },
               {"conv2d", "[2, 3, 2, 2]", "[4, 3, 5, 5]"});
  expect_error([&] { conv2d(ctx, zeros({2, 3, 8, 8}), zeros({4, 3, 3, 3}), zeros({5}), {}); },
               {"conv2d", "[5]", "[4, 3, 3, 3]"});
  expect_error([&] { conv2d(ctx, zeros({2, 3, 8, 8}), zeros({4, 3, 3, 3}), nullptr, {.stride = 0}); },
               {"conv2d", "stride"});
}

TEST(OpErrors, PoolingAndBatchNormShapes) {
  Context ctx;
  expect_error([&] { maxpool2d(ctx, zeros({2, 3, 1, 1}), {.kernel = 2, .stride = 2}); }, {"maxpool2d", "[2, 3, 1, 1]"});
  expect_error([&] { avgpool2d(ctx, zeros({2, 3, 8}), {}); }, {"avgpool2d", "[2, 3, 8]"});
  expect_error([&] { global_avgpool(ctx, zeros({2, 3})); }, {"global_avgpool", "[2, 3]"});
  Tensor mean = Tensor::zeros({3}), var = Tensor::zeros({3});
  expect_error([&] { batchnorm2d(ctx, zeros({2, 4, 5, 5}), zeros({3}), zeros({3}), mean, var, 1e-5f, 0.1f); },
               {"batchnorm2d", "[2, 4, 5, 5]", "[3]"});
  Tensor mean1 = Tensor::zeros({1}), var1 = Tensor::zeros({1});
  expect_error([&] { batchnorm2d(ctx, zeros({1, 1, 1, 1}), zeros({1}), zeros({1}), mean1, var1, 1e-5f, 0.1f); },
               {"batchnorm2d", "[1, 1, 1, 1]"});
}

TEST(OpErrors, AddAndReshapeShapes) {
  Context ctx;
  expect_error([&] { add(ctx, zeros({2, 3}), zeros({3, 2})); }, {"add", "[2, 3]", "[3, 2]"});
  expect_error([&] { reshape(ctx, zeros({2, 3}), {7}); }, {"reshape", "[2, 3]", "[7]"});
  expect_error([&] { dropout(ctx, zeros({2, 3}), 1.0f); }, {"dropout", "[0, 1)"});
}

TEST(OpErrors, LossShapesDtypesAndLabels) {
  Context ctx;
  Tensor labels = Tensor::zeros({4}, DType::i32);
  expect_error([&] { softmax_cross_entropy(ctx, zeros({4, 10}), Tensor::zeros({4}), Tensor()); },
               {"softmax_cross_entropy", "labels", "f32", "i32"});
  expect_error([&] { softmax_cross_entropy(ctx, zeros({4, 10}), Tensor::zeros({3}, DType::i32), Tensor()); },
               {"softmax_cross_entropy", "[4, 10]", "[3]"});
  expect_error([&] { softmax_cross_entropy(ctx, zeros({4, 10}), labels, Tensor::zeros({5})); },
               {"softmax_cross_entropy", "[5]", "[4, 10]"});
  labels.i32()[2] = 10;
  expect_error([&] { softmax_cross_entropy(ctx, zeros({4, 10}), labels, Tensor()); },
               {"softmax_cross_entropy", "label 10", "example 2"});
}

TEST(OpErrors, DtypeAndDevice) {
  Context ctx;
  Var ints = constant(Tensor::zeros({2, 3}, DType::i32));
  expect_error([&] { relu(ctx, ints); }, {"relu", "[2, 3] i32", "f32"});
  // A tensor tagged as living on a GPU (memory never touched): without a CUDA backend, ops must refuse it.
  float dummy[6] = {};
  Var on_gpu = constant(Tensor::wrap(dummy, {2, 3}, DType::f32, Device::cuda(0)));
  expect_error([&] { linear(ctx, on_gpu, zeros({4, 3}), nullptr); }, {"linear", "[2, 3]", "cuda:0"});
  expect_error([&] { relu(ctx, on_gpu); }, {"relu", "cuda:0"});
}

}  // namespace
}  // namespace raisin
