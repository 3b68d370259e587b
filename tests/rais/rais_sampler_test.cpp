// The RAIS sampler: RAIS.md §7 property 13 (with c = (1, 0, 0, 0), d = 0 and no shuffled warm-up it
// reproduces uniform-iid exactly, also through training), and its adaptive behaviour: shuffled warm-up,
// PT refits swapped in on schedule, weights 1/(n·p), a gain ratio above 1 when examples differ; and a
// sampler restored from a saved state (with a PT solve in flight) continues exactly like the original.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/dataset.h"
#include "engine/trainer.h"
#include "models/models.h"
#include "rais/rais_sampler.h"

namespace raisin::rais {
namespace {

RaisOptions plain_uniform_options() {
  RaisOptions o;
  o.shuffled_warmup = false;
  o.refit = false;
  o.initial_c = {1, 0, 0, 0};
  o.initial_d = {0, 0, 0, 0};
  return o;
}

TEST(RaisSampler, UniformSetReproducesUniformIidDraws) {
  const int64_t n = 1000;
  RaisSampler rais(n, 9, plain_uniform_options());
  UniformIidSampler iid(n, 9);
  std::vector<int32_t> a, b;
  std::vector<float> wa, wb;
  std::vector<float> norms(64, 0.5f);
  for (int64_t step = 0; step < 50; ++step) {
    rais.draw(step, 64, a, wa);
    iid.draw(step, 64, b, wb);
    ASSERT_EQ(a, b) << "step " << step;
    for (float w : wa) ASSERT_EQ(w, 1.0f);
    rais.observe({step, a, norms.data(), wa.data(), 0.01});
    EXPECT_EQ(rais.lr_multiplier(), 1.0);
  }
}

TEST(RaisSampler, UniformSetTrainsExactlyLikeUniformIid) {
  const Dataset data = make_synthetic(512, 1, 28, 28, 10, 3);
  const Normalization norm = channel_statistics(data);
  auto run = [&](Sampler& sampler) {
    auto model = make_model("mlp", {1, 28, 28, 10}, 5);
    TrainOptions options;
    options.batch = 32;
    Trainer trainer(*model, data, norm, sampler, options);
    std::vector<double> losses;
    for (int s = 0; s < 20; ++s) losses.push_back(trainer.step().loss);
    losses.push_back(trainer.progress());
    return losses;
  };
  RaisSampler rais(data.count, 4, plain_uniform_options());
  UniformIidSampler iid(data.count, 4);
  EXPECT_EQ(run(rais), run(iid));
}

TEST(RaisSampler, WarmsUpThenRefitsAndFavoursHardExamples) {
  // Examples 0..99 are "hard" (proxy norm 1.2), the rest easy (0.05).
  const int64_t n = 1000;
  const int batch = 50;
  RaisOptions options;
  options.record_batches = 4;
  RaisSampler rais(n, 2, options);
  std::vector<int32_t> idx;
  std::vector<float> w, norms(batch);
  int64_t hard_drawn_late = 0, drawn_late = 0;
  for (int64_t step = 0; step < 200; ++step) {
    rais.draw(step, batch, idx, w);
    const bool warm = !rais.stats().importance_sampling;
    if (step < 20) {
      EXPECT_TRUE(warm) << "step " << step << ": the first epoch (20 steps) is shuffled";
      EXPECT_TRUE(w.empty());
    }
    for (int j = 0; j < batch; ++j) norms[j] = idx[j] < 100 ? 1.2f : 0.05f;
    if (!warm) {
      ASSERT_EQ(w.size(), size_t(batch));
      for (int j = 0; j < batch; ++j)
        ASSERT_NEAR(w[j], 1.0 / (n * rais.probabilities()[idx[j]]), 1e-6 * w[j]);
    }
    if (step >= 150)
      for (int32_t i : idx) hard_drawn_late += i < 100, ++drawn_late;
    double g = 0;  // a bias gradient whose norm is dominated by the hard examples
    for (int j = 0; j < batch; ++j) g += (w.empty() ? 1.0 : w[j]) * norms[j] / batch;
    rais.observe({step, idx, norms.data(), w.empty() ? nullptr : w.data(), 0.01 * g * g});
  }
  const RaisStats stats = rais.stats();
  EXPECT_TRUE(stats.importance_sampling);
  EXPECT_GE(stats.solves, 40);
  EXPECT_EQ(stats.failed_solves, 0);
  EXPECT_GT(double(hard_drawn_late) / double(drawn_late), 0.4) << "hard examples are 10% of the data";
  EXPECT_GT(rais.lr_multiplier(), 1.5);
}

// Draws and observes steps [from, to) on `sampler` with proxy norms that depend on the example and the
// step; appends every index, weight and multiplier to `log`.
void run_steps(RaisSampler& sampler, int64_t from, int64_t to, int batch, std::vector<double>& log) {
  std::vector<int32_t> idx;
  std::vector<float> w, norms(batch);
  for (int64_t step = from; step < to; ++step) {
    sampler.draw(step, batch, idx, w);
    log.push_back(sampler.lr_multiplier());  // read between draw and observe, as the trainer does
    for (int j = 0; j < batch; ++j) norms[j] = float((idx[j] % 7) * 0.2 + 0.01 * double(step % 5));
    double g = 0;
    for (int j = 0; j < batch; ++j) g += (w.empty() ? 1.0 : w[j]) * norms[j] / batch;
    sampler.observe({step, idx, norms.data(), w.empty() ? nullptr : w.data(), 0.01 * g * g});
    log.insert(log.end(), idx.begin(), idx.end());
    log.insert(log.end(), w.begin(), w.end());
  }
}

TEST(RaisSampler, RestoredStateContinuesExactly) {
  const int64_t n = 500;
  const int batch = 25;  // 20 steps per epoch
  RaisOptions options;
  options.record_batches = 4;
  options.refresh = 3;
  // Before the warm-up ends, at a swap-in step, mid-refresh with a solve in flight, and late.
  for (int64_t stop : {7, 28, 41, 90}) {
    RaisSampler straight(n, 5, options), first(n, 5, options);
    std::vector<double> expected, got;
    run_steps(straight, 0, 120, batch, expected);
    run_steps(first, 0, stop, batch, got);
    SamplerState state;
    first.save_state(state);
    RaisSampler resumed(n, 5, options);
    resumed.load_state(state);
    run_steps(resumed, stop, 120, batch, got);
    ASSERT_EQ(got, expected) << "stopped after step " << stop;
    EXPECT_EQ(resumed.stats().solves, straight.stats().solves);
    EXPECT_EQ(resumed.stats().c, straight.stats().c);
    EXPECT_EQ(resumed.probabilities(), straight.probabilities());
  }
  SamplerState state;
  RaisSampler(n, 5, options).save_state(state);
  state.floats["last_norm"].pop_back();
  RaisSampler other(n, 5, options);
  EXPECT_THROW(other.load_state(state), Error) << "a state for another dataset size";
}

TEST(RaisSampler, SolvingOnItsOwnThreadDrawsTheSame) {
  RaisOptions inline_options, thread_options;
  inline_options.record_batches = thread_options.record_batches = 4;
  thread_options.background_solve = true;
  RaisSampler inline_solve(500, 6, inline_options), own_thread(500, 6, thread_options);
  std::vector<double> a, b;
  run_steps(inline_solve, 0, 100, 25, a);
  run_steps(own_thread, 0, 100, 25, b);
  EXPECT_EQ(a, b);
  EXPECT_GE(own_thread.stats().solves, 15);
  EXPECT_EQ(own_thread.stats().c, inline_solve.stats().c);
}

TEST(RaisSampler, RejectsBadOptions) {
  RaisOptions no_records;
  no_records.record_batches = 0;
  EXPECT_THROW(RaisSampler(10, 1, no_records), Error);
  RaisOptions no_start;
  no_start.shuffled_warmup = false;
  EXPECT_THROW(RaisSampler(10, 1, no_start), Error);
  RaisSampler ok(10, 1);
  std::vector<int32_t> idx;
  std::vector<float> w;
  ok.draw(0, 4, idx, w);
  EXPECT_THROW(ok.draw(1, 5, idx, w), Error);
}

}  // namespace
}  // namespace raisin::rais
