// Tests for engine/checkpoint: a round trip of a net with batch norm and a residual block plus its SGD
// momentum is bit-identical (and training resumes identically); the file is the documented
// safetensors layout; every mismatch (names, shapes, dtypes, optimizer state) and every damaged file
// gives an error naming what is wrong and leaves model and optimizer untouched; a failed write never
// damages the previous checkpoint; a sampler's state round-trips exactly (doubles included) under names
// PyTorch loaders drop.
#include "engine/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "engine/init.h"
#include "engine/layers.h"
#include "engine/safetensors.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

namespace fs = std::filesystem;

// conv1 → bn1 → relu → layer (one residual block 4→8, stride 2, with a downsample) → pool → fc.
class SmallNet : public Module {
 public:
  SmallNet(uint64_t seed, int classes = 3, bool rename_fc = false)
      : rng(seed),
        conv1(register_module("conv1", std::make_unique<Conv2d>(3, 4, 3, rng, Conv2dOptions{1, 1}, false))),
        bn1(register_module("bn1", std::make_unique<BatchNorm2d>(4))),
        layer(register_module("layer1", std::make_unique<Sequential>())),
        fc(register_module(rename_fc ? "head" : "fc", std::make_unique<Linear>(8, classes, rng))) {
    layer.add<ResidualBlock>(4, 8, 2, rng);
  }
  Var forward(Context& ctx, const Var& x) override {
    return fc.forward(ctx, global_avgpool(ctx, layer.forward(ctx, relu(ctx, bn1.forward(ctx, conv1.forward(ctx, x))))));
  }
  Rng rng;
  Conv2d& conv1;
  BatchNorm2d& bn1;
  Sequential& layer;
  Linear& fc;
};

// One SGD step on a fixed random batch.
void train_step(Module& model, Sgd& sgd, uint64_t seed) {
  Tensor x = Tensor::empty({4, 3, 8, 8});
  const auto values = test::random_floats(size_t(x.numel()), seed);
  std::memcpy(x.f32(), values.data(), values.size() * sizeof(float));
  Tensor labels = Tensor::empty({4}, DType::i32);
  for (int i = 0; i < 4; ++i) labels.i32()[i] = (i + int(seed)) % 3;
  Tape tape;
  Context ctx{.tape = &tape, .training = true};
  sgd.zero_grad();
  LossOutput loss = softmax_cross_entropy(ctx, model.forward(ctx, constant(x)), labels, Tensor());
  tape.backward(loss.mean_loss);
  sgd.step(0.1f);
}

std::vector<std::byte> bytes_of(const Tensor& t) {
  std::vector<std::byte> out(size_t(t.numel()) * dtype_size(t.dtype()));
  const void* p = t.dtype() == DType::f32 ? static_cast<const void*>(t.f32())
                  : t.dtype() == DType::i32 ? static_cast<const void*>(t.i32())
                                            : static_cast<const void*>(t.i64());
  if (!out.empty()) std::memcpy(out.data(), p, out.size());
  return out;
}

using Snapshot = std::vector<std::pair<std::string, std::vector<std::byte>>>;

Snapshot snapshot(const Module& model, const Sgd* sgd = nullptr) {
  Snapshot out;
  for (const auto& [name, t] : model.state_dict()) out.emplace_back(name, bytes_of(t));
  if (sgd)
    for (const auto& [name, t] : sgd->state()) out.emplace_back("optimizer." + name, bytes_of(t));
  return out;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("raisin_ckpt_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A trained SmallNet (two SGD steps, so weights, running statistics and momentum are all non-trivial)
  // saved to `file` with its optimizer unless model_only.
  std::string trained_checkpoint(const std::string& file, bool model_only = false) {
    SmallNet net(1);
    Sgd sgd(net.named_parameters(), SgdOptions{});
    train_step(net, sgd, 10);
    train_step(net, sgd, 11);
    const std::string p = path(file);
    save_checkpoint(p, net, model_only ? nullptr : &sgd, {{"model", "smallnet"}, {"epoch", "2"}});
    return p;
  }

  fs::path dir_;
};

// Expects `f` to throw a raisin::Error containing every one of `words`.
template <typename F>
void expect_error(F&& f, std::initializer_list<std::string> words) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << *words.begin() << "'";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& w : words) EXPECT_NE(message.find(w), std::string::npos) << "missing '" << w << "' in: " << message;
  }
}

TEST_F(CheckpointTest, RoundTripIsBitIdenticalAndTrainingResumesIdentically) {
  SmallNet a(1);
  Sgd sgd_a(a.named_parameters(), SgdOptions{});
  train_step(a, sgd_a, 10);
  train_step(a, sgd_a, 11);
  const std::string p = path("ckpt.safetensors");
  save_checkpoint(p, a, &sgd_a, {{"model", "smallnet"}, {"epoch", "2"}});
  EXPECT_FALSE(fs::exists(p + ".tmp"));

  SmallNet b(2);  // different initial weights, fresh momentum
  Sgd sgd_b(b.named_parameters(), SgdOptions{});
  ASSERT_NE(snapshot(a, &sgd_a), snapshot(b, &sgd_b));
  const auto metadata = load_checkpoint(p, b, &sgd_b);
  EXPECT_EQ(snapshot(a, &sgd_a), snapshot(b, &sgd_b));
  EXPECT_EQ(b.bn1.num_batches_tracked.i64()[0], 2);
  const std::vector<std::pair<std::string, std::string>> want = {
      {"format", "raisin-checkpoint-1"}, {"model", "smallnet"}, {"epoch", "2"}};
  EXPECT_EQ(metadata, want);
  EXPECT_EQ(read_checkpoint_metadata(p), want);

  // The same next step from both: momentum was restored, not just the weights.
  train_step(a, sgd_a, 12);
  train_step(b, sgd_b, 12);
  EXPECT_EQ(snapshot(a, &sgd_a), snapshot(b, &sgd_b));
}

TEST_F(CheckpointTest, FileLayoutIsPyTorchState) {
  SmallNet net(1);
  Sgd sgd(net.named_parameters(), SgdOptions{});
  train_step(net, sgd, 10);
  const std::string p = path("ckpt.safetensors");
  save_checkpoint(p, net, &sgd, {});
  const safetensors::File file = safetensors::read(p);

  std::vector<std::string> names;
  for (const auto& e : file.entries) names.push_back(e.name);
  std::vector<std::string> want;
  for (const auto& [name, t] : net.state_dict()) want.push_back(name);
  const size_t model_count = want.size();
  for (const auto& [name, t] : net.named_parameters()) want.push_back("optimizer.momentum." + name);
  EXPECT_EQ(names, want);
  EXPECT_EQ(model_count, 26u);  // conv1, bn1 (5 each: weight, bias, 2 running stats, counter), block: 3 convs + 3 bns, fc (2)

  const auto& counter = file.at("layer1.0.downsample.1.num_batches_tracked");
  EXPECT_EQ(counter.dtype, "I64");
  EXPECT_TRUE(counter.shape.empty());
  EXPECT_EQ(counter.values<int64_t>(), std::vector<int64_t>{1});
  EXPECT_EQ(file.at("layer1.0.conv1.weight").shape, (std::vector<int64_t>{8, 4, 3, 3}));
  EXPECT_EQ(file.at("optimizer.momentum.fc.weight").shape, (std::vector<int64_t>{3, 8}));
  for (const auto& [name, t] : sgd.state())
    if (name == "momentum.fc.weight") {
      EXPECT_EQ(file.at("optimizer.momentum.fc.weight").values<float>(), std::vector<float>(t.f32(), t.f32() + 24));
    }
  ASSERT_FALSE(file.metadata.empty());
  EXPECT_EQ(file.metadata.front(), (std::pair<std::string, std::string>{"format", "raisin-checkpoint-1"}));
}

TEST_F(CheckpointTest, ModelOnlyFileLoadsForEvaluationButNotForResuming) {
  const std::string p = trained_checkpoint("model.safetensors", /*model_only=*/true);
  EXPECT_EQ(safetensors::read(p).entries.size(), SmallNet(1).state_dict().size());

  SmallNet eval(3);
  load_checkpoint(p, eval, nullptr);
  SmallNet reference(1);
  load_checkpoint(p, reference, nullptr);
  EXPECT_EQ(snapshot(eval), snapshot(reference));

  SmallNet resume(4);
  Sgd sgd(resume.named_parameters(), SgdOptions{});
  const Snapshot before = snapshot(resume, &sgd);
  expect_error([&] { load_checkpoint(p, resume, &sgd); }, {p, "no optimizer state", "model-only"});
  EXPECT_EQ(snapshot(resume, &sgd), before);

  // An optimizer without momentum has no state, so a model-only file resumes it.
  SmallNet plain(5);
  Sgd no_momentum(plain.named_parameters(), SgdOptions{.momentum = 0.0f});
  EXPECT_NO_THROW(load_checkpoint(p, plain, &no_momentum));
}

TEST_F(CheckpointTest, OptimizerStateIsIgnoredWithoutAnOptimizer) {
  const std::string p = trained_checkpoint("full.safetensors");
  SmallNet a(7), b(8);
  load_checkpoint(p, a, nullptr);
  Sgd sgd(b.named_parameters(), SgdOptions{});
  load_checkpoint(p, b, &sgd);
  EXPECT_EQ(snapshot(a), snapshot(b));
}

TEST_F(CheckpointTest, MismatchedNamesListMissingAndUnexpected) {
  const std::string p = trained_checkpoint("ckpt.safetensors");
  SmallNet other(9, 3, /*rename_fc=*/true);
  Sgd sgd(other.named_parameters(), SgdOptions{});
  const Snapshot before = snapshot(other, &sgd);
  expect_error([&] { load_checkpoint(p, other, nullptr); },
               {p, "smallnet", "does not match the model", "missing from the file: head.weight, head.bias",
                "unexpected tensor(s) in the file: fc.weight, fc.bias"});
  expect_error([&] { load_checkpoint(p, other, &sgd); }, {"head.weight"});
  EXPECT_EQ(snapshot(other, &sgd), before);
}

TEST_F(CheckpointTest, LongNameListsAreShortened) {
  const std::string p = trained_checkpoint("ckpt.safetensors");
  Sequential unrelated;
  Rng rng(1);
  for (int i = 0; i < 8; ++i) unrelated.add<Linear>(2, 2, rng);
  expect_error([&] { load_checkpoint(p, unrelated, nullptr); },
               {"16 model tensor(s) missing", "0.weight, 0.bias, 1.weight, 1.bias, 2.weight (and 11 more)",
                "26 unexpected tensor(s)", "conv1.weight, bn1.weight, bn1.bias, bn1.running_mean, bn1.running_var (and 21 more)"});
}

TEST_F(CheckpointTest, MismatchedShapeNamesTensorAndBothShapesAndLoadsNothing) {
  const std::string p = trained_checkpoint("ckpt.safetensors");
  SmallNet wider(9, /*classes=*/5);  // fc is last: a naive loader would have copied everything before it
  const Snapshot before = snapshot(wider);
  expect_error([&] { load_checkpoint(p, wider, nullptr); },
               {p, "'fc.weight'", "F32 [3, 8] in the file", "F32 [5, 8] in the model"});
  EXPECT_EQ(snapshot(wider), before);
}

TEST_F(CheckpointTest, MismatchedDtypeNamesTensorAndBothDtypes) {
  const std::string p = trained_checkpoint("ckpt.safetensors");
  safetensors::File file = safetensors::read(p);
  for (auto& e : file.entries)
    if (e.name == "layer1.0.bn2.num_batches_tracked") e = safetensors::Entry::from<int32_t>(e.name, {}, {2});
  const std::string bad = path("i32.safetensors");
  safetensors::write(bad, file);
  SmallNet net(9);
  const Snapshot before = snapshot(net);
  expect_error([&] { load_checkpoint(bad, net, nullptr); },
               {bad, "'layer1.0.bn2.num_batches_tracked'", "I32 [] in the file", "I64 [] in the model"});
  EXPECT_EQ(snapshot(net), before);
}

TEST_F(CheckpointTest, MismatchedOptimizerStateLoadsNothing) {
  const std::string p = trained_checkpoint("ckpt.safetensors");
  safetensors::File file = safetensors::read(p);
  std::erase_if(file.entries, [](const auto& e) { return e.name == "optimizer.momentum.bn1.bias"; });
  const std::string bad = path("partial.safetensors");
  safetensors::write(bad, file);

  SmallNet net(9);
  Sgd sgd(net.named_parameters(), SgdOptions{});
  const Snapshot before = snapshot(net, &sgd);
  expect_error([&] { load_checkpoint(bad, net, &sgd); },
               {bad, "does not match the optimizer", "missing from the file: optimizer.momentum.bn1.bias"});
  EXPECT_EQ(snapshot(net, &sgd), before);  // the model's tensors all matched, yet none was copied

  // Momentum in the file but none in the optimizer: a configuration mismatch, not silently dropped.
  Sgd no_momentum(net.named_parameters(), SgdOptions{.momentum = 0.0f});
  expect_error([&] { load_checkpoint(p, net, &no_momentum); },
               {"unexpected tensor(s) in the file: optimizer.momentum.conv1.weight"});
  EXPECT_EQ(snapshot(net), std::vector(before.begin(), before.begin() + long(net.state_dict().size())));
}

TEST_F(CheckpointTest, DamagedFilesAreRejected) {
  const std::string p = trained_checkpoint("ckpt.safetensors");
  std::string content;
  {
    std::ifstream in(p, std::ios::binary);
    content.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write_raw = [&](const std::string& name, const std::string& data) {
    const std::string q = path(name);
    std::ofstream(q, std::ios::binary) << data;
    return q;
  };
  SmallNet net(9);
  Sgd sgd(net.named_parameters(), SgdOptions{});
  const Snapshot before = snapshot(net, &sgd);
  const std::string truncated = write_raw("truncated.safetensors", content.substr(0, content.size() - 100));
  const std::string header_only = write_raw("short.safetensors", content.substr(0, 20));
  std::string garbled = content;
  garbled[12] = '\x01';  // inside the JSON header
  const std::string garbled_path = write_raw("garbled.safetensors", garbled);
  const std::string empty = write_raw("empty.safetensors", "");
  for (const std::string& q : {truncated, header_only, garbled_path, empty}) {
    expect_error([&] { load_checkpoint(q, net, &sgd); }, {q});
    expect_error([&] { read_checkpoint_metadata(q); }, {q});
  }
  expect_error([&] { load_checkpoint(path("absent.safetensors"), net, nullptr); }, {"absent.safetensors"});
  EXPECT_EQ(snapshot(net, &sgd), before);
}

TEST_F(CheckpointTest, FailedOrInterruptedWriteLeavesThePreviousCheckpoint) {
  const std::string p = trained_checkpoint("ckpt.safetensors");
  SmallNet reference(20);
  load_checkpoint(p, reference, nullptr);

  // A crash mid-write leaves only a partial "<path>.tmp": the checkpoint itself is the old, whole file.
  std::ofstream(p + ".tmp", std::ios::binary) << "partial garbage";
  SmallNet after_crash(21);
  load_checkpoint(p, after_crash, nullptr);
  EXPECT_EQ(snapshot(after_crash), snapshot(reference));

  // A write that fails (here: the temporary path is a directory) throws and leaves the old file.
  fs::remove(p + ".tmp");
  fs::create_directory(p + ".tmp");
  SmallNet other(22);
  expect_error([&] { save_checkpoint(p, other, nullptr, {}); }, {p});
  SmallNet reloaded(23);
  load_checkpoint(p, reloaded, nullptr);
  EXPECT_EQ(snapshot(reloaded), snapshot(reference));

  // The next successful save replaces a stale temporary file.
  fs::remove_all(p + ".tmp");
  std::ofstream(p + ".tmp", std::ios::binary) << "stale";
  save_checkpoint(p, other, nullptr, {});
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  SmallNet fresh(24);
  load_checkpoint(p, fresh, nullptr);
  EXPECT_EQ(snapshot(fresh), snapshot(other));
}

TEST_F(CheckpointTest, MetadataRules) {
  SmallNet net(1);
  const std::string p = path("ckpt.safetensors");
  // Metadata read from a checkpoint can be passed on: its "format" is accepted and not repeated.
  save_checkpoint(p, net, nullptr, {{"format", "raisin-checkpoint-1"}, {"note", "x"}});
  EXPECT_EQ(read_checkpoint_metadata(p),
            (std::vector<std::pair<std::string, std::string>>{{"format", "raisin-checkpoint-1"}, {"note", "x"}}));
  expect_error([&] { save_checkpoint(p, net, nullptr, {{"format", "pt"}}); }, {p, "\"format\" is reserved"});
  expect_error([&] { save_checkpoint(p, net, nullptr, {{"a", "1"}, {"a", "2"}}); }, {p, "duplicate metadata key"});

  // A future format is refused; a plain PyTorch safetensors state dict (no raisin format) loads.
  safetensors::File file = safetensors::read(p);
  file.metadata = {{"format", "raisin-checkpoint-2"}};
  const std::string future = path("future.safetensors");
  safetensors::write(future, file);
  expect_error([&] { load_checkpoint(future, net, nullptr); }, {future, "raisin-checkpoint-2", "raisin-checkpoint-1"});
  file.metadata = {{"format", "pt"}};
  const std::string torch_file = path("torch.safetensors");
  safetensors::write(torch_file, file);
  SmallNet other(2);
  load_checkpoint(torch_file, other, nullptr);
  EXPECT_EQ(snapshot(other), snapshot(net));
}

TEST_F(CheckpointTest, SamplerStateRoundTripsExactlyBesideTheModel) {
  SmallNet net(1);
  Sgd sgd(net.named_parameters(), SgdOptions{});
  train_step(net, sgd, 10);
  SamplerState state;
  state.floats["last_norm"] = {0.5f, 1e-30f, 3.25f};
  state.integers["last_seen"] = {-1, 7, int64_t(1) << 40};
  state.reals["c"] = {0.1, 1.0 / 3.0, 6.02214076e23, -0.0};
  state.reals["empty"] = {};
  const std::string p = path("ckpt.safetensors");
  save_checkpoint(p, net, &sgd, {{"model", "smallnet"}}, &state);

  // Every entry that is not the model starts with "optimizer.": PyTorch's filter leaves the model.
  const safetensors::File file = safetensors::read(p);
  size_t model_entries = 0;
  for (const auto& e : file.entries) model_entries += !std::string_view(e.name).starts_with("optimizer.");
  EXPECT_EQ(model_entries, net.state_dict().size());
  EXPECT_EQ(file.at("optimizer.sampler.last_norm").dtype, "F32");
  EXPECT_EQ(file.at("optimizer.sampler.last_seen").dtype, "I64");

  SmallNet other(2);
  Sgd other_sgd(other.named_parameters(), SgdOptions{});
  SamplerState loaded;
  load_checkpoint(p, other, &other_sgd, &loaded);
  EXPECT_EQ(snapshot(other, &other_sgd), snapshot(net, &sgd));
  EXPECT_EQ(loaded.floats, state.floats);
  EXPECT_EQ(loaded.integers, state.integers);
  ASSERT_EQ(loaded.reals.size(), 2u);
  EXPECT_EQ(loaded.reals["empty"], std::vector<double>{});
  const std::vector<double>& c = loaded.real_array("c", 4);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(std::memcmp(&c[i], &state.reals["c"][i], sizeof(double)), 0) << i;
  expect_error([&] { loaded.real_array("c", 3); }, {"'c'", "4 values", "expected 3"});
  expect_error([&] { loaded.integer("missing"); }, {"'missing'"});

  // Without a sampler (and without an optimizer) the sampler's entries are ignored.
  SmallNet eval(3);
  EXPECT_NO_THROW(load_checkpoint(p, eval, nullptr));
  EXPECT_NO_THROW(load_checkpoint(p, eval, &other_sgd));
  // A plain checkpoint gives an empty state; "sampler." metadata is reserved.
  SamplerState none;
  load_checkpoint(trained_checkpoint("plain.safetensors"), eval, nullptr, &none);
  EXPECT_TRUE(none.empty());
  expect_error([&] { save_checkpoint(p, net, nullptr, {{"sampler.c", "1"}}); }, {p, "reserved for the sampler"});
}

}  // namespace
}  // namespace raisin
