// Tests of the CPU batchnorm2d kernels: forward (train and inference) against double-precision
// references written here, running-statistics updates, the zero-variance edge cases, and both
// backward kernels against central finite differences of the double reference, including the
// accumulate-into-gradients contract.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "tests/support/check.h"
#include "tests/support/shapes.h"

namespace raisin {
namespace {

using kernels::ImageShape;
using test::all_close;
using test::random_floats;
using test::to_double;
using test::name;
using test::at;

// ---- double-precision references ----

struct BatchStats {
  std::vector<double> mean, var;  // biased variance
};

BatchStats reference_stats(const ImageShape& s, const std::vector<double>& x) {
  BatchStats st{std::vector<double>(s.channels), std::vector<double>(s.channels)};
  const double n = double(s.batch) * double(s.spatial());
  for (int c = 0; c < s.channels; ++c) {
    double sum = 0;
    for (int b = 0; b < s.batch; ++b)
      for (int64_t i = 0; i < s.spatial(); ++i) sum += x[at(s, b, c, i)];
    const double mean = sum / n;
    double sq = 0;
    for (int b = 0; b < s.batch; ++b)
      for (int64_t i = 0; i < s.spatial(); ++i) sq += (x[at(s, b, c, i)] - mean) * (x[at(s, b, c, i)] - mean);
    st.mean[c] = mean;
    st.var[c] = sq / n;
  }
  return st;
}

// y = (x − mean)/sqrt(var + eps)·γ + β with the given per-channel mean and variance.
std::vector<double> reference_normalise(const ImageShape& s, double eps, const std::vector<double>& x,
                                        const std::vector<double>& gamma, const std::vector<double>& beta,
                                        const std::vector<double>& mean, const std::vector<double>& var) {
  std::vector<double> y(x.size());
  for (int b = 0; b < s.batch; ++b)
    for (int c = 0; c < s.channels; ++c)
      for (int64_t i = 0; i < s.spatial(); ++i) {
        const int64_t k = at(s, b, c, i);
        y[k] = (x[k] - mean[c]) / std::sqrt(var[c] + eps) * gamma[c] + beta[c];
      }
  return y;
}

std::vector<double> reference_train(const ImageShape& s, double eps, const std::vector<double>& x,
                                    const std::vector<double>& gamma, const std::vector<double>& beta) {
  const BatchStats st = reference_stats(s, x);
  return reference_normalise(s, eps, x, gamma, beta, st.mean, st.var);
}

// Packs x, γ, β into one vector for finite differences, and splits it again.
struct Params {
  std::vector<double> x, gamma, beta;
};
std::vector<double> pack(const Params& p) {
  std::vector<double> v = p.x;
  v.insert(v.end(), p.gamma.begin(), p.gamma.end());
  v.insert(v.end(), p.beta.begin(), p.beta.end());
  return v;
}
Params unpack(const ImageShape& s, const std::vector<double>& v) {
  const size_t n = size_t(s.numel()), c = size_t(s.channels);
  return {{v.begin(), v.begin() + n}, {v.begin() + n, v.begin() + n + c}, {v.begin() + n + c, v.end()}};
}

// ---- random problem ----

struct Problem {
  ImageShape s;
  std::vector<float> x, gamma, beta, running_mean, running_var, dy;
};

Problem make_problem(const ImageShape& s, uint64_t seed) {
  Problem p{s, {}, {}, {}, {}, {}, {}};
  const size_t n = size_t(s.numel()), c = size_t(s.channels);
  // Per-channel offsets and spreads, so that statistics differ between channels.
  const auto offset = random_floats(c, seed + 1, -2.0f, 2.0f);
  const auto spread = random_floats(c, seed + 2, 0.5f, 3.0f);
  p.x = random_floats(n, seed, -1.0f, 1.0f);
  for (int b = 0; b < s.batch; ++b)
    for (int ch = 0; ch < s.channels; ++ch)
      for (int64_t i = 0; i < s.spatial(); ++i) {
        float& v = p.x[at(s, b, ch, i)];
        v = offset[ch] + spread[ch] * v;
      }
  p.gamma = random_floats(c, seed + 3, 0.5f, 2.0f);
  for (size_t k = 0; k < c; k += 2) p.gamma[k] = -p.gamma[k];  // negative scales too
  p.beta = random_floats(c, seed + 4, -1.0f, 1.0f);
  p.running_mean = random_floats(c, seed + 5, -1.0f, 1.0f);
  p.running_var = random_floats(c, seed + 6, 0.5f, 2.0f);
  p.dy = random_floats(n, seed + 7, -1.0f, 1.0f);
  return p;
}

const std::vector<ImageShape> kShapes = {
    {2, 3, 4, 5},  // small, even batch
    {3, 5, 7, 3},  // odd everything
    {1, 4, 3, 3},  // batch 1, spatial > 1
    {7, 2, 1, 1},  // spatial 1, statistics over the batch only
    {4, 1, 5, 2},  // a single channel
    {5, 16, 6, 6}, // more channels than threads
};

constexpr float kEps = 1e-5f;
// The shape loops alternate PyTorch's default eps with a large one that changes the result visibly.
float eps_for(size_t shape_index) { return shape_index % 2 == 0 ? kEps : 0.25f; }
constexpr float kMomentum = 0.1f;

// ---- forward ----

TEST(BatchNormForwardTrain, MatchesReferenceAndUpdatesRunningStats) {
  uint64_t seed = 100;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    const ImageShape& s = kShapes[k];
    const float eps = eps_for(k);
    SCOPED_TRACE(name(s) + " eps " + std::to_string(eps));
    Problem p = make_problem(s, seed += 10);
    const size_t n = p.x.size(), C = size_t(s.channels);
    std::vector<float> y(n, NAN), save_mean(C, NAN), save_invstd(C, NAN);
    std::vector<float> rm = p.running_mean, rv = p.running_var;
    cpu::batchnorm2d_forward_train(s, eps, kMomentum, p.x.data(), p.gamma.data(), p.beta.data(), y.data(),
                                   save_mean.data(), save_invstd.data(), rm.data(), rv.data());

    const auto xd = to_double(p.x);
    const BatchStats st = reference_stats(s, xd);
    const auto y_ref = reference_normalise(s, eps, xd, to_double(p.gamma), to_double(p.beta), st.mean, st.var);
    const double N = double(s.batch) * double(s.spatial());
    std::vector<double> invstd_ref(C), rm_ref(C), rv_ref(C);
    for (size_t c = 0; c < C; ++c) {
      invstd_ref[c] = 1.0 / std::sqrt(st.var[c] + eps);
      rm_ref[c] = (1.0 - kMomentum) * p.running_mean[c] + kMomentum * st.mean[c];
      rv_ref[c] = (1.0 - kMomentum) * p.running_var[c] + kMomentum * st.var[c] * N / (N - 1.0);
    }
    EXPECT_TRUE(all_close("y", y, y_ref, 1e-6, 1e-6));
    EXPECT_TRUE(all_close("save_mean", save_mean, st.mean, 1e-6, 1e-7));
    EXPECT_TRUE(all_close("save_invstd", save_invstd, invstd_ref, 1e-6, 0));
    EXPECT_TRUE(all_close("running_mean", rm, rm_ref, 1e-6, 1e-7));
    EXPECT_TRUE(all_close("running_var", rv, rv_ref, 1e-6, 0));
  }
}

// A channel whose mean is large compared to its spread: a single-pass float E[x²] − E[x]² loses the
// variance entirely here.
TEST(BatchNormForwardTrain, LargeMeanSmallSpread) {
  const ImageShape s{4, 2, 8, 8};
  Problem p = make_problem(s, 7);
  for (auto& v : p.x) v = 1000.0f + 0.01f * v;
  std::vector<float> y(p.x.size()), save_mean(2), save_invstd(2), rm(2, 0.0f), rv(2, 1.0f);
  cpu::batchnorm2d_forward_train(s, kEps, kMomentum, p.x.data(), p.gamma.data(), p.beta.data(), y.data(),
                                 save_mean.data(), save_invstd.data(), rm.data(), rv.data());
  const auto xd = to_double(p.x);
  const BatchStats st = reference_stats(s, xd);
  std::vector<double> invstd_ref(2);
  for (int c = 0; c < 2; ++c) invstd_ref[c] = 1.0 / std::sqrt(st.var[c] + kEps);
  EXPECT_TRUE(all_close("save_invstd", save_invstd, invstd_ref, 1e-5, 0));
  EXPECT_TRUE(all_close("y", y,
                        reference_normalise(s, kEps, xd, to_double(p.gamma), to_double(p.beta), st.mean, st.var),
                        1e-5, 1e-5));
}

// A channel with a NaN or an infinity in its batch keeps its running statistics; the others move.
TEST(BatchNormForwardTrain, NonFiniteChannelKeepsItsRunningStatistics) {
  const ImageShape s{4, 3, 5, 5};
  Problem p = make_problem(s, 11);
  p.x[size_t(1 * 25 + 7)] = NAN;                                            // batch 0, channel 1
  p.x[size_t(2 * 75 + 2 * 25 + 3)] = std::numeric_limits<float>::infinity();  // batch 2, channel 2
  std::vector<float> y(p.x.size()), save_mean(3), save_invstd(3), rm = p.running_mean, rv = p.running_var;
  cpu::batchnorm2d_forward_train(s, kEps, kMomentum, p.x.data(), p.gamma.data(), p.beta.data(), y.data(),
                                 save_mean.data(), save_invstd.data(), rm.data(), rv.data());
  EXPECT_NE(rm[0], p.running_mean[0]);
  EXPECT_NE(rv[0], p.running_var[0]);
  for (int c : {1, 2}) {
    EXPECT_EQ(rm[size_t(c)], p.running_mean[size_t(c)]) << "channel " << c;
    EXPECT_EQ(rv[size_t(c)], p.running_var[size_t(c)]) << "channel " << c;
  }
}

// Batch 1, spatial 1: every channel has one value, variance 0. The output is β (finite, since
// eps > 0), the running mean moves towards x, and the running variance, which has no unbiased
// estimate from one value, is left unchanged.
TEST(BatchNormForwardTrain, SingleValuePerChannel) {
  const ImageShape s{1, 3, 1, 1};
  Problem p = make_problem(s, 3);
  std::vector<float> y(3, NAN), save_mean(3, NAN), save_invstd(3, NAN);
  std::vector<float> rm = p.running_mean, rv = p.running_var;
  cpu::batchnorm2d_forward_train(s, kEps, kMomentum, p.x.data(), p.gamma.data(), p.beta.data(), y.data(),
                                 save_mean.data(), save_invstd.data(), rm.data(), rv.data());
  for (int c = 0; c < 3; ++c) {
    EXPECT_TRUE(std::isfinite(y[c]));
    EXPECT_EQ(y[c], p.beta[c]);
    EXPECT_EQ(save_mean[c], p.x[c]);
    EXPECT_NEAR(save_invstd[c], 1.0 / std::sqrt(double(kEps)), 1e-6 / std::sqrt(double(kEps)));
    EXPECT_NEAR(rm[c], (1.0 - kMomentum) * p.running_mean[c] + kMomentum * p.x[c], 1e-6);
    EXPECT_EQ(rv[c], p.running_var[c]);
  }

  // Backward stays finite too: x̂ = 0, so dx = 0, dγ = 0, dβ = dy.
  std::vector<float> dx(3, 0.0f), dgamma(3, 0.0f), dbeta(3, 0.0f);
  cpu::batchnorm2d_backward_train(s, p.x.data(), p.gamma.data(), save_mean.data(), save_invstd.data(),
                                  p.dy.data(), dx.data(), dgamma.data(), dbeta.data());
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(dx[c], 0.0f);
    EXPECT_EQ(dgamma[c], 0.0f);
    EXPECT_EQ(dbeta[c], p.dy[c]);
  }
}

// A constant channel with several values: variance 0, output β, running variance decays.
TEST(BatchNormForwardTrain, ConstantChannel) {
  const ImageShape s{3, 2, 2, 3};
  Problem p = make_problem(s, 5);
  for (auto& v : p.x) v = 0.75f;
  std::vector<float> y(p.x.size(), NAN), save_mean(2), save_invstd(2);
  std::vector<float> rm = p.running_mean, rv = p.running_var;
  cpu::batchnorm2d_forward_train(s, kEps, kMomentum, p.x.data(), p.gamma.data(), p.beta.data(), y.data(),
                                 save_mean.data(), save_invstd.data(), rm.data(), rv.data());
  for (int b = 0; b < s.batch; ++b)
    for (int c = 0; c < s.channels; ++c)
      for (int64_t i = 0; i < s.spatial(); ++i) EXPECT_EQ(y[at(s, b, c, i)], p.beta[c]);
  for (int c = 0; c < 2; ++c) {
    EXPECT_EQ(save_mean[c], 0.75f);
    EXPECT_NEAR(rv[c], (1.0 - kMomentum) * p.running_var[c], 1e-6);
  }
}

// Several training steps: the running statistics follow the momentum recursion step by step.
TEST(BatchNormForwardTrain, RunningStatsOverSteps) {
  const ImageShape s{2, 3, 3, 2};
  const float momentum = 0.3f;
  Problem p = make_problem(s, 11);
  std::vector<float> rm = p.running_mean, rv = p.running_var;
  std::vector<double> rm_ref = to_double(rm), rv_ref = to_double(rv);
  std::vector<float> y(p.x.size()), save_mean(3), save_invstd(3);
  const double N = double(s.batch) * double(s.spatial());
  for (int step = 0; step < 5; ++step) {
    const Problem q = make_problem(s, 200 + step);
    cpu::batchnorm2d_forward_train(s, kEps, momentum, q.x.data(), q.gamma.data(), q.beta.data(), y.data(),
                                   save_mean.data(), save_invstd.data(), rm.data(), rv.data());
    const BatchStats st = reference_stats(s, to_double(q.x));
    for (int c = 0; c < 3; ++c) {
      rm_ref[c] = (1.0 - momentum) * rm_ref[c] + momentum * st.mean[c];
      rv_ref[c] = (1.0 - momentum) * rv_ref[c] + momentum * st.var[c] * N / (N - 1.0);
    }
  }
  EXPECT_TRUE(all_close("running_mean", rm, rm_ref, 1e-5, 1e-6));
  EXPECT_TRUE(all_close("running_var", rv, rv_ref, 1e-5, 0));
}

TEST(BatchNormForwardInfer, MatchesReference) {
  uint64_t seed = 300;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    const ImageShape& s = kShapes[k];
    const float eps = eps_for(k);
    SCOPED_TRACE(name(s) + " eps " + std::to_string(eps));
    Problem p = make_problem(s, seed += 10);
    std::vector<float> y(p.x.size(), NAN);
    cpu::batchnorm2d_forward_infer(s, eps, p.x.data(), p.gamma.data(), p.beta.data(), p.running_mean.data(),
                                   p.running_var.data(), y.data());
    const auto y_ref = reference_normalise(s, eps, to_double(p.x), to_double(p.gamma), to_double(p.beta),
                                           to_double(p.running_mean), to_double(p.running_var));
    EXPECT_TRUE(all_close("y", y, y_ref, 1e-6, 1e-6));
  }
}

// ---- backward ----

// Runs the train forward (for save_mean/save_invstd) and then the train backward with dy = r.
struct TrainGrads {
  std::vector<float> dx, dgamma, dbeta;
};
TrainGrads run_backward_train(const Problem& p, float eps, TrainGrads g) {
  const ImageShape& s = p.s;
  const size_t C = size_t(s.channels);
  std::vector<float> y(p.x.size()), save_mean(C), save_invstd(C), rm(C, 0.0f), rv(C, 1.0f);
  cpu::batchnorm2d_forward_train(s, eps, kMomentum, p.x.data(), p.gamma.data(), p.beta.data(), y.data(),
                                 save_mean.data(), save_invstd.data(), rm.data(), rv.data());
  cpu::batchnorm2d_backward_train(s, p.x.data(), p.gamma.data(), save_mean.data(), save_invstd.data(),
                                  p.dy.data(), g.dx.empty() ? nullptr : g.dx.data(),
                                  g.dgamma.empty() ? nullptr : g.dgamma.data(),
                                  g.dbeta.empty() ? nullptr : g.dbeta.data());
  return g;
}
TrainGrads run_backward_infer(const Problem& p, float eps, TrainGrads g) {
  cpu::batchnorm2d_backward_infer(p.s, eps, p.x.data(), p.gamma.data(), p.running_mean.data(),
                                  p.running_var.data(), p.dy.data(), g.dx.empty() ? nullptr : g.dx.data(),
                                  g.dgamma.empty() ? nullptr : g.dgamma.data(),
                                  g.dbeta.empty() ? nullptr : g.dbeta.data());
  return g;
}
TrainGrads zero_grads(const ImageShape& s) {
  return {std::vector<float>(size_t(s.numel()), 0.0f), std::vector<float>(size_t(s.channels), 0.0f),
          std::vector<float>(size_t(s.channels), 0.0f)};
}

// Largest |v_i|, to set an absolute tolerance relative to the gradient's scale.
double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

void expect_grads_match(const TrainGrads& g, const Params& fd) {
  EXPECT_TRUE(all_close("dx", g.dx, fd.x, 1e-5, 1e-5 * max_abs(fd.x)));
  EXPECT_TRUE(all_close("dgamma", g.dgamma, fd.gamma, 1e-5, 1e-5 * max_abs(fd.gamma)));
  EXPECT_TRUE(all_close("dbeta", g.dbeta, fd.beta, 1e-5, 1e-5 * max_abs(fd.beta)));
}

TEST(BatchNormBackwardTrain, MatchesFiniteDifferences) {
  uint64_t seed = 500;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    const ImageShape& s = kShapes[k];
    const float eps = eps_for(k);
    SCOPED_TRACE(name(s) + " eps " + std::to_string(eps));
    const Problem p = make_problem(s, seed += 10);
    const auto r = to_double(p.dy);
    auto loss = [&](const std::vector<double>& v) {
      const Params q = unpack(s, v);
      return test::dot(r, reference_train(s, eps, q.x, q.gamma, q.beta));
    };
    const Params fd = unpack(
        s, test::finite_difference_gradient(loss, pack({to_double(p.x), to_double(p.gamma), to_double(p.beta)})));
    expect_grads_match(run_backward_train(p, eps, zero_grads(s)), fd);
  }
}

TEST(BatchNormBackwardInfer, MatchesFiniteDifferences) {
  uint64_t seed = 700;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    const ImageShape& s = kShapes[k];
    const float eps = eps_for(k);
    SCOPED_TRACE(name(s) + " eps " + std::to_string(eps));
    const Problem p = make_problem(s, seed += 10);
    const auto r = to_double(p.dy);
    const auto rm = to_double(p.running_mean), rv = to_double(p.running_var);
    auto loss = [&](const std::vector<double>& v) {
      const Params q = unpack(s, v);
      return test::dot(r, reference_normalise(s, eps, q.x, q.gamma, q.beta, rm, rv));
    };
    const Params fd = unpack(
        s, test::finite_difference_gradient(loss, pack({to_double(p.x), to_double(p.gamma), to_double(p.beta)})));
    expect_grads_match(run_backward_infer(p, eps, zero_grads(s)), fd);
  }
}

// Pre-filled gradients receive +=; a null gradient pointer is skipped and leaves the others as
// they would be.
template <typename Run>
void check_accumulates(Run run_with_eps) {
  auto run = [&](const Problem& p, TrainGrads g) { return run_with_eps(p, kEps, std::move(g)); };
  const ImageShape s{3, 4, 3, 5};
  const Problem p = make_problem(s, 900);
  const TrainGrads fresh = run(p, zero_grads(s));
  TrainGrads pre{random_floats(size_t(s.numel()), 901), random_floats(4, 902), random_floats(4, 903)};
  const TrainGrads acc = run(p, pre);
  auto sum = [](const std::vector<float>& a, const std::vector<float>& b) {
    std::vector<double> out(a.size());
    for (size_t i = 0; i < a.size(); ++i) out[i] = double(a[i]) + double(b[i]);
    return out;
  };
  EXPECT_TRUE(all_close("dx", acc.dx, sum(pre.dx, fresh.dx), 1e-6, 1e-6));
  EXPECT_TRUE(all_close("dgamma", acc.dgamma, sum(pre.dgamma, fresh.dgamma), 1e-6, 1e-6));
  EXPECT_TRUE(all_close("dbeta", acc.dbeta, sum(pre.dbeta, fresh.dbeta), 1e-6, 1e-6));

  const TrainGrads only_dx = run(p, TrainGrads{std::vector<float>(size_t(s.numel()), 0.0f), {}, {}});
  EXPECT_EQ(only_dx.dx, fresh.dx);
  const TrainGrads only_params = run(p, TrainGrads{{}, std::vector<float>(4, 0.0f), std::vector<float>(4, 0.0f)});
  EXPECT_EQ(only_params.dgamma, fresh.dgamma);
  EXPECT_EQ(only_params.dbeta, fresh.dbeta);
}

TEST(BatchNormBackwardTrain, AccumulatesAndSkipsNull) { check_accumulates(run_backward_train); }
TEST(BatchNormBackwardInfer, AccumulatesAndSkipsNull) { check_accumulates(run_backward_infer); }

}  // namespace
}  // namespace raisin
