// Tests of the CPU fused softmax-cross-entropy kernels: per-example losses, the weighted mean, the
// stored gradient ω_i(softmax − onehot)/B and the RAIS proxy norm ‖softmax − onehot‖₂ against a
// double-precision reference and against finite differences of the mean loss; the weight
// identities; stability for huge logits (closed forms); and the backward's scale-and-accumulate.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "tests/support/check.h"
#include "tests/support/shapes.h"

namespace raisin {
namespace {

using kernels::LossShape;
using test::all_close;
using test::random_floats;
using test::random_ints;
using test::to_double;
using test::name;

// ---- double-precision reference ----

struct Reference {
  std::vector<double> example_loss;  // [batch]
  std::vector<double> diff;          // softmax − onehot, [batch, classes]
  std::vector<double> dlogits;       // ω_i · diff_i / batch
  std::vector<double> proxy_norm;    // ‖diff_i‖
  double mean_loss = 0;
};

Reference reference(const LossShape& s, const std::vector<double>& z, const std::vector<int32_t>& labels,
                    const std::vector<double>& weights /* empty: ω ≡ 1 */) {
  const int B = s.batch, K = s.classes;
  Reference r;
  r.example_loss.resize(B);
  r.diff.resize(size_t(B) * K);
  r.dlogits.resize(size_t(B) * K);
  r.proxy_norm.resize(B);
  for (int i = 0; i < B; ++i) {
    const double* zi = z.data() + size_t(i) * K;
    double m = zi[0];
    for (int j = 1; j < K; ++j) m = std::max(m, zi[j]);
    double sum = 0;
    for (int j = 0; j < K; ++j) sum += std::exp(zi[j] - m);
    const double w = weights.empty() ? 1.0 : weights[i];
    r.example_loss[i] = m + std::log(sum) - zi[labels[i]];
    r.mean_loss += w * r.example_loss[i] / B;
    double sq = 0;
    for (int j = 0; j < K; ++j) {
      const double d = std::exp(zi[j] - m) / sum - (j == labels[i] ? 1.0 : 0.0);
      r.diff[size_t(i) * K + j] = d;
      r.dlogits[size_t(i) * K + j] = w * d / B;
      sq += d * d;
    }
    r.proxy_norm[i] = std::sqrt(sq);
  }
  return r;
}

// ---- kernel runner ----

struct Output {
  std::vector<float> example_loss, dlogits, proxy_norm;
  float mean_loss = NAN;
};

Output run_forward(const LossShape& s, const std::vector<float>& logits, const std::vector<int32_t>& labels,
                   const std::vector<float>& weights /* empty: null */, bool want_proxy = true) {
  Output o;
  o.example_loss.assign(s.batch, NAN);
  o.dlogits.assign(size_t(s.batch) * s.classes, NAN);
  if (want_proxy) o.proxy_norm.assign(s.batch, NAN);
  cpu::softmax_cross_entropy_forward(s, logits.data(), labels.data(), weights.empty() ? nullptr : weights.data(),
                                     o.example_loss.data(), &o.mean_loss, o.dlogits.data(),
                                     want_proxy ? o.proxy_norm.data() : nullptr);
  return o;
}

struct Problem {
  LossShape s;
  std::vector<float> logits;
  std::vector<int32_t> labels;
  std::vector<float> weights;
};

Problem make_problem(const LossShape& s, uint64_t seed, float range = 5.0f) {
  return {s, random_floats(size_t(s.batch) * s.classes, seed, -range, range), random_ints(s.batch, seed + 1, s.classes),
          random_floats(s.batch, seed + 2, 0.2f, 3.0f)};
}

const std::vector<LossShape> kShapes = {{1, 1}, {1, 2}, {7, 10}, {32, 3}, {5, 1000}, {3000, 4}};

// ---- forward ----

TEST(CrossEntropyForward, MatchesReference) {
  uint64_t seed = 10;
  for (const LossShape& s : kShapes) {
    SCOPED_TRACE(name(s));
    const Problem p = make_problem(s, seed += 10);
    const Output o = run_forward(s, p.logits, p.labels, p.weights);
    const Reference r = reference(s, to_double(p.logits), p.labels, to_double(p.weights));
    EXPECT_TRUE(all_close("example_loss", o.example_loss, r.example_loss, 1e-6, 1e-7));
    EXPECT_TRUE(all_close("mean_loss", &o.mean_loss, &r.mean_loss, 1, 1e-6, 0));
    // dlogits = ω_i(softmax − onehot)/B, checked relative to its own scale per example
    EXPECT_TRUE(all_close("dlogits", o.dlogits, r.dlogits, 1e-6, 1e-9 / s.batch));
    EXPECT_TRUE(all_close("proxy_norm", o.proxy_norm, r.proxy_norm, 1e-6, 1e-9));
  }
}

TEST(CrossEntropyForward, GradientMatchesFiniteDifferences) {
  uint64_t seed = 100;
  for (const LossShape& s : {LossShape{1, 2}, LossShape{4, 3}, LossShape{6, 11}, LossShape{3, 64}}) {
    SCOPED_TRACE(name(s));
    const Problem p = make_problem(s, seed += 10);
    const auto w = to_double(p.weights);
    auto mean_loss = [&](const std::vector<double>& z) { return reference(s, z, p.labels, w).mean_loss; };
    const auto fd = test::finite_difference_gradient(mean_loss, to_double(p.logits));
    const Output o = run_forward(s, p.logits, p.labels, p.weights);
    EXPECT_TRUE(all_close("dlogits vs finite differences", o.dlogits, fd, 1e-5, 1e-8));
  }
}

// ṽ_i = ‖B·dlogits_i/ω_i‖: the proxy norm is the norm of the gradient the kernel stored.
TEST(CrossEntropyForward, ProxyNormIsNormOfUnweightedGradient) {
  const LossShape s{64, 17};
  const Problem p = make_problem(s, 7, 8.0f);
  const Output o = run_forward(s, p.logits, p.labels, p.weights);
  std::vector<double> expected(s.batch);
  for (int i = 0; i < s.batch; ++i) {
    double sq = 0;
    for (int j = 0; j < s.classes; ++j) {
      const double g = double(o.dlogits[size_t(i) * s.classes + j]) * s.batch / p.weights[i];
      sq += g * g;
    }
    expected[i] = std::sqrt(sq);
  }
  EXPECT_TRUE(all_close("proxy_norm", o.proxy_norm, expected, 1e-6, 1e-9));
}

// ω scales dlogits and the example's share of the mean loss, and nothing else.
TEST(CrossEntropyForward, WeightsScaleGradientAndMeanOnly) {
  const LossShape s{9, 6};
  Problem p = make_problem(s, 21);
  p.weights[3] = 0.0f;  // a zero weight silences the example's gradient and mean-loss share
  const Output o = run_forward(s, p.logits, p.labels, p.weights);
  std::vector<float> doubled = p.weights;
  for (auto& w : doubled) w *= 2.0f;
  const Output o2 = run_forward(s, p.logits, p.labels, doubled);
  const Output plain = run_forward(s, p.logits, p.labels, {});

  EXPECT_EQ(o2.example_loss, o.example_loss);
  EXPECT_EQ(o2.proxy_norm, o.proxy_norm);
  EXPECT_EQ(o.example_loss, plain.example_loss);
  EXPECT_EQ(o.proxy_norm, plain.proxy_norm);
  for (size_t k = 0; k < o.dlogits.size(); ++k) EXPECT_EQ(o2.dlogits[k], 2.0f * o.dlogits[k]) << k;
  EXPECT_NEAR(o2.mean_loss, 2.0 * o.mean_loss, 1e-6 * o.mean_loss);

  double weighted = 0;
  for (int i = 0; i < s.batch; ++i) {
    weighted += double(p.weights[i]) * o.example_loss[i] / s.batch;
    for (int j = 0; j < s.classes; ++j) {
      const size_t k = size_t(i) * s.classes + j;
      EXPECT_NEAR(o.dlogits[k], double(p.weights[i]) * plain.dlogits[k], 1e-6 * std::abs(plain.dlogits[k]))
          << i << "," << j;
    }
  }
  EXPECT_NEAR(o.mean_loss, weighted, 1e-6 * weighted);
  for (int j = 0; j < s.classes; ++j) EXPECT_EQ(o.dlogits[3 * s.classes + j], 0.0f);
}

// ω ≡ 1 is the same computation as weights = nullptr, bit for bit, and gives the plain mean.
TEST(CrossEntropyForward, UnitWeightsEqualNull) {
  const LossShape s{33, 12};
  const Problem p = make_problem(s, 31);
  const Output ones = run_forward(s, p.logits, p.labels, std::vector<float>(s.batch, 1.0f));
  const Output null = run_forward(s, p.logits, p.labels, {});
  EXPECT_EQ(ones.example_loss, null.example_loss);
  EXPECT_EQ(ones.dlogits, null.dlogits);
  EXPECT_EQ(ones.proxy_norm, null.proxy_norm);
  EXPECT_EQ(ones.mean_loss, null.mean_loss);
  const Reference r = reference(s, to_double(p.logits), p.labels, {});
  double plain_mean = 0;
  for (double l : r.example_loss) plain_mean += l / s.batch;
  EXPECT_NEAR(null.mean_loss, plain_mean, 1e-6 * plain_mean);
  // Without proxy_norm the other outputs are unchanged.
  const Output no_proxy = run_forward(s, p.logits, p.labels, {}, /*want_proxy=*/false);
  EXPECT_EQ(no_proxy.example_loss, null.example_loss);
  EXPECT_EQ(no_proxy.dlogits, null.dlogits);
  EXPECT_EQ(no_proxy.mean_loss, null.mean_loss);
}

// Confident, correct predictions: with t = e^{−30} (and e^{−40}) the loss is log1p(4t) ≈ 4t and
// 1 − p_y = 4t/(1 + 4t). Computed as log(Σ e) or as p_y − 1, both would lose most of their digits.
TEST(CrossEntropyForward, ConfidentPredictionKeepsRelativeAccuracy) {
  const LossShape s{2, 5};
  const std::vector<float> logits = {30, 0, 0, 0, 0, /**/ 0, 0, 0, 0, 40};
  const std::vector<int32_t> labels = {0, 4};
  const Output o = run_forward(s, logits, labels, {});
  std::vector<double> loss_ref, dlogits_ref, norm_ref;
  for (double t : {std::exp(-30.0), std::exp(-40.0)}) {
    loss_ref.push_back(std::log1p(4 * t));
    const double other = t / (1 + 4 * t), label = -4 * t / (1 + 4 * t);
    norm_ref.push_back(std::sqrt(label * label + 4 * other * other));
    for (int j = 0; j < 4; ++j) dlogits_ref.push_back(other / s.batch);
  }
  dlogits_ref.insert(dlogits_ref.begin(), -4 * std::exp(-30.0) / (1 + 4 * std::exp(-30.0)) / s.batch);
  dlogits_ref.push_back(-4 * std::exp(-40.0) / (1 + 4 * std::exp(-40.0)) / s.batch);
  EXPECT_TRUE(all_close("example_loss", o.example_loss, loss_ref, 1e-6, 0));
  EXPECT_TRUE(all_close("dlogits", o.dlogits, dlogits_ref, 1e-6, 0));
  EXPECT_TRUE(all_close("proxy_norm", o.proxy_norm, norm_ref, 1e-6, 0));
}

void expect_all_finite(const Output& o) {
  EXPECT_TRUE(std::isfinite(o.mean_loss));
  for (float v : o.example_loss) EXPECT_TRUE(std::isfinite(v));
  for (float v : o.dlogits) EXPECT_TRUE(std::isfinite(v));
  for (float v : o.proxy_norm) EXPECT_TRUE(std::isfinite(v));
}

// Huge logits against closed forms. Per row: logits, label, and the exact loss.
TEST(CrossEntropyForward, LargeLogitsAreStable) {
  const float big = 3e38f, mid = 1e38f;
  const double e1 = std::exp(-1.0), e2 = std::exp(-2.0);
  const LossShape s{7, 3};
  const std::vector<float> logits = {
      1e4f,  1e4f - 1, 1e4f - 2,  // label 1: ℓ = 1 + log(1 + e⁻¹ + e⁻²)
      -1e4f, -1e4f,    -1e4f,     // label 2: ℓ = log 3
      big,   -big,     -big,      // label 0: ℓ = 0, softmax = onehot
      big,   mid,      -big,      // label 1: ℓ = big − mid, softmax = e₀
      big,   big,      big,       // label 2: ℓ = log 3
      -big,  -big,     -big,      // label 0: ℓ = log 3
      -big,  big,      big,       // label 1: ℓ = log 2, softmax = (0, ½, ½)
  };
  const std::vector<int32_t> labels = {1, 2, 0, 1, 2, 0, 1};
  const double third = 1.0 / 3.0, sum3 = 1 + e1 + e2;
  const std::vector<double> loss_ref = {1 + std::log(sum3), std::log(3.0), 0.0, double(big) - double(mid),
                                        std::log(3.0),      std::log(3.0), std::log(2.0)};
  const std::vector<double> diff_ref = {
      1 / sum3, e1 / sum3 - 1, e2 / sum3,  //
      third,    third,         third - 1,  //
      0,        0,             0,          //
      1,        -1,            0,          //
      third,    third,         third - 1,  //
      third - 1, third,        third,      //
      0,        -0.5,          0.5,        //
  };
  const Output o = run_forward(s, logits, labels, {});
  expect_all_finite(o);
  EXPECT_TRUE(all_close("example_loss", o.example_loss, loss_ref, 1e-6, 0));
  std::vector<double> dlogits_ref(diff_ref.size()), norm_ref(s.batch, 0.0);
  double mean_ref = 0;
  for (int i = 0; i < s.batch; ++i) {
    mean_ref += loss_ref[i] / s.batch;
    for (int j = 0; j < 3; ++j) {
      const double d = diff_ref[size_t(i) * 3 + j];
      dlogits_ref[size_t(i) * 3 + j] = d / s.batch;
      norm_ref[i] += d * d;
    }
    norm_ref[i] = std::sqrt(norm_ref[i]);
  }
  EXPECT_TRUE(all_close("dlogits", o.dlogits, dlogits_ref, 1e-6, 1e-12));
  EXPECT_TRUE(all_close("proxy_norm", o.proxy_norm, norm_ref, 1e-6, 1e-12));
  EXPECT_TRUE(all_close("mean_loss", &o.mean_loss, &mean_ref, 1, 1e-6, 0));
  EXPECT_EQ(o.proxy_norm[2], 0.0f);
  EXPECT_NEAR(o.proxy_norm[3], std::sqrt(2.0), 1e-6);
}

// ṽ_i ∈ [0, √2] always, with √2 reached by a confidently wrong prediction and 0 by a confidently
// right one.
TEST(CrossEntropyForward, ProxyNormBounds) {
  const LossShape s{500, 7};
  const Problem p = make_problem(s, 41, 60.0f);
  const Output o = run_forward(s, p.logits, p.labels, p.weights);
  for (int i = 0; i < s.batch; ++i) {
    EXPECT_GE(o.proxy_norm[i], 0.0f) << i;
    EXPECT_LE(o.proxy_norm[i], std::sqrt(2.0f)) << i;
  }
  const Output edge = run_forward({2, 3}, {0, 200, 0, /**/ 200, 0, 0}, {0, 0}, {});
  EXPECT_FLOAT_EQ(edge.proxy_norm[0], std::sqrt(2.0f));
  EXPECT_EQ(edge.proxy_norm[1], 0.0f);
}

// ---- backward ----

TEST(CrossEntropyBackward, ScalesByUpstreamAndAccumulates) {
  const LossShape s{6, 9};
  const Problem p = make_problem(s, 51);
  const Output o = run_forward(s, p.logits, p.labels, p.weights);
  const float dmean = 0.37f;
  const std::vector<float> pre = random_floats(o.dlogits.size(), 52);
  std::vector<float> out = pre;
  cpu::softmax_cross_entropy_backward(s, &dmean, o.dlogits.data(), out.data());
  std::vector<double> expected(out.size());
  for (size_t k = 0; k < out.size(); ++k) expected[k] = double(pre[k]) + double(dmean) * o.dlogits[k];
  EXPECT_TRUE(all_close("dlogits_out after one call", out, expected, 1e-6, 1e-7));
  cpu::softmax_cross_entropy_backward(s, &dmean, o.dlogits.data(), out.data());
  for (size_t k = 0; k < out.size(); ++k) expected[k] += double(dmean) * o.dlogits[k];
  EXPECT_TRUE(all_close("dlogits_out after two calls", out, expected, 1e-6, 1e-7));

  // Upstream 1 into zeros reproduces dlogits exactly.
  const float one = 1.0f;
  std::vector<float> fresh(o.dlogits.size(), 0.0f);
  cpu::softmax_cross_entropy_backward(s, &one, o.dlogits.data(), fresh.data());
  EXPECT_EQ(fresh, o.dlogits);
}

}  // namespace
}  // namespace raisin
