// Tests for engine/safetensors: round trips, a file written by Python, every kind of malformed file
// (each must give a raisin::Error whose message says what is wrong, never a crash), atomic writes, and
// the shape of the PyTorch golden fixtures in tests/golden.
#include "engine/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace raisin::safetensors {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("raisin_st_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes an 8-byte length (header.size() unless given), the header text and the data bytes.
  std::string raw(const std::string& header, const std::string& data = "", int64_t length = -1,
                  const std::string& name = "raw.safetensors") const {
    const std::string p = path(name);
    std::ofstream out(p, std::ios::binary);
    const uint64_t n = length < 0 ? header.size() : static_cast<uint64_t>(length);
    for (int k = 0; k < 8; ++k) out.put(static_cast<char>((n >> (8 * k)) & 0xFF));
    out << header << data;
    return p;
  }

  fs::path dir_;
};

// Expects read(p) to throw a raisin::Error naming the file and containing every one of `words`.
void expect_read_error(const std::string& p, std::initializer_list<std::string> words) {
  try {
    read(p);
    ADD_FAILURE() << "read(" << p << ") succeeded, expected an error containing " << *words.begin();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(p), std::string::npos) << "message does not name the file: " << message;
    for (const std::string& w : words) EXPECT_NE(message.find(w), std::string::npos) << "missing '" << w << "' in: " << message;
  }
}

File sample_file() {
  File f;
  f.entries.push_back(Entry::from<float>("weight", {2, 3}, {1.f, -2.f, 3.5f, 0.f, 1e-30f, -7.25f}));
  f.entries.push_back(Entry::from<int32_t>("labels", {4}, {0, 9, -1, 2147483647}));
  f.entries.push_back(Entry::from<int64_t>("step", {}, {int64_t{1} << 40}));  // 0-d scalar
  f.entries.push_back(Entry::from<uint8_t>("pixels", {1, 2, 2}, {0, 1, 128, 255}));
  f.entries.push_back(Entry::from<float>("empty", {0, 5}, {}));
  f.entries.push_back(Entry::from<float>("loss", {}, {2.5f}));
  f.metadata = {{"format", "pt"}, {"tricky \"key\"", "tab\there\nnewline \\ caf\xC3\xA9 \x01"}};
  return f;
}

TEST_F(SafetensorsTest, RoundTripKeepsDtypesShapesValuesOrderAndMetadata) {
  const File f = sample_file();
  const std::string p = path("round.safetensors");
  write(p, f);
  const File g = read(p);
  ASSERT_EQ(g.entries.size(), f.entries.size());
  for (size_t k = 0; k < f.entries.size(); ++k) {
    EXPECT_EQ(g.entries[k].name, f.entries[k].name);
    EXPECT_EQ(g.entries[k].dtype, f.entries[k].dtype);
    EXPECT_EQ(g.entries[k].shape, f.entries[k].shape);
    EXPECT_EQ(g.entries[k].data, f.entries[k].data);
  }
  EXPECT_EQ(g.metadata, f.metadata);
  EXPECT_EQ(g.at("weight").values<float>(), (std::vector<float>{1.f, -2.f, 3.5f, 0.f, 1e-30f, -7.25f}));
  EXPECT_EQ(g.at("step").values<int64_t>(), std::vector<int64_t>{int64_t{1} << 40});
  EXPECT_TRUE(g.at("step").shape.empty());
  EXPECT_EQ(g.at("step").numel(), 1);
  EXPECT_EQ(g.at("empty").numel(), 0);
  EXPECT_EQ(g.at("pixels").values<uint8_t>(), (std::vector<uint8_t>{0, 1, 128, 255}));

  // Header padded with spaces to a multiple of 8.
  std::ifstream in(p, std::ios::binary);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | len[k];
  EXPECT_EQ(n % 8, 0u);
  std::string header(n, '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  EXPECT_EQ(header.find("\"__metadata__\""), 1u);
  EXPECT_EQ(header.find_last_not_of(' '), header.find_last_of('}'));
}

TEST_F(SafetensorsTest, EmptyFileRoundTrips) {
  const std::string p = path("empty.safetensors");
  write(p, File{});
  const File g = read(p);
  EXPECT_TRUE(g.entries.empty());
  EXPECT_TRUE(g.metadata.empty());
  EXPECT_EQ(fs::file_size(p), 16u);  // length + "{}" padded to 8
}

TEST_F(SafetensorsTest, FindAndAt) {
  const File f = sample_file();
  EXPECT_NE(f.find("labels"), nullptr);
  EXPECT_EQ(f.find("nope"), nullptr);
  try {
    f.at("classifier.0.weight");
    ADD_FAILURE() << "at() of a missing name succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tensor named 'classifier.0.weight'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(f.at("labels").values<float>(), Error);  // I32, not F32
  EXPECT_THROW(Entry::from<float>("x", {2, 2}, {1.f, 2.f}), Error);
}

TEST_F(SafetensorsTest, ReadsFileWrittenByPython) {
  const File f = read(std::string(RAISIN_GOLDEN_DIR) + "/safetensors_python.safetensors");
  ASSERT_EQ(f.entries.size(), 5u);
  EXPECT_EQ(f.entries[0].name, "matrix");  // header order, though the data is stored in another order
  EXPECT_EQ(f.at("matrix").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.at("matrix").values<float>(), (std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, -7.0f}));
  EXPECT_EQ(f.at("ids").values<int32_t>(), (std::vector<int32_t>{3, -1, 2147483647, -2147483647 - 1}));
  EXPECT_TRUE(f.at("step").shape.empty());
  EXPECT_EQ(f.at("step").values<int64_t>(), std::vector<int64_t>{1234567890123});
  EXPECT_EQ(f.at("bytes").values<uint8_t>(), (std::vector<uint8_t>{0, 128, 255}));
  EXPECT_EQ(f.at("empty").shape, (std::vector<int64_t>{0, 2}));
  EXPECT_TRUE(f.at("empty").data.empty());
  const std::vector<std::pair<std::string, std::string>> metadata = {
      {"format", "pt"},
      {"note", "quote \" backslash \\ tab\t newline\n"},
      {"unicode", "caf\xC3\xA9 \xF0\x9F\x98\x80"}};  // from \u00e9 and the surrogate pair \ud83d\ude00
  EXPECT_EQ(f.metadata, metadata);
}

// ---- malformed files ----

const std::string kTensor = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
const std::string kData8(8, '\0');

TEST_F(SafetensorsTest, MissingFileNamesReason) {
  expect_read_error(path("does_not_exist.safetensors"), {"cannot open", "No such file"});
}

TEST_F(SafetensorsTest, DirectoryIsRejected) { expect_read_error(dir_.string(), {"not a regular file"}); }

TEST_F(SafetensorsTest, FileTooShort) {
  const std::string p = path("short.safetensors");
  std::ofstream(p, std::ios::binary) << "abc";
  expect_read_error(p, {"too short"});
  std::ofstream(p, std::ios::binary | std::ios::trunc);
  expect_read_error(p, {"too short"});
}

TEST_F(SafetensorsTest, HeaderLengthLargerThanFile) {
  expect_read_error(raw("{}", "", 1000), {"header length 1000", "larger than the file"});
  expect_read_error(raw("{}", "", -1 & 0x7FFFFFFFFFFFFFFF), {"larger than the file"});
}

TEST_F(SafetensorsTest, HeaderOverLimit) {
  // A sparse file just big enough that the length fits in it, so only the limit can reject it.
  const std::string p = raw("{}", "", static_cast<int64_t>(kMaxHeaderBytes + 8));
  fs::resize_file(p, kMaxHeaderBytes + 100);
  expect_read_error(p, {"exceeds", "limit"});
}

TEST_F(SafetensorsTest, BadJsonNamesByte) {
  expect_read_error(raw("{\"a\" 1}"), {"bad JSON at byte 5", "expected ':'"});
  expect_read_error(raw("{\"a\":"), {"bad JSON", "unexpected end"});
  expect_read_error(raw("[1,2]"), {"bad JSON at byte 0", "must be a JSON object"});
  expect_read_error(raw(""), {"bad JSON", "must be a JSON object"});
  expect_read_error(raw("{}x"), {"bad JSON at byte 2", "after the end"});
  expect_read_error(raw("{\"a\":1,}"), {"bad JSON at byte 7", "expected a string key"});
  expect_read_error(raw("{\"a\":-1}"), {"bad JSON", "negative"});
  expect_read_error(raw("{\"a\":1.5}"), {"bad JSON", "fractions"});
  expect_read_error(raw("{\"a\":01}"), {"bad JSON", "leading zeros"});
  expect_read_error(raw("{\"a\":true}"), {"bad JSON", "true, false and null"});
  expect_read_error(raw("{\"a\":99999999999999999999}"), {"bad JSON", "too large"});
  expect_read_error(raw("{\"a\":\"x\\q\"}"), {"bad JSON", "unknown escape \\q"});
  expect_read_error(raw("{\"a\":\"x\ty\"}"), {"bad JSON", "control character"});
  expect_read_error(raw("{\"a\":\"\\u12\"}"), {"bad JSON", "\\u escape"});
  expect_read_error(raw("{\"a\":\"\\ud800x\"}"), {"bad JSON", "surrogate"});
  expect_read_error(raw("{\"a\":\"\\udc00\"}"), {"bad JSON", "surrogate"});
  expect_read_error(raw("{\"a\":\"\xC3\"}"), {"bad JSON", "UTF-8"});
  expect_read_error(raw("{\"a\":\"\xC0\xAF\"}"), {"bad JSON", "UTF-8"});  // overlong
  expect_read_error(raw("{\"a\":\"abc"), {"bad JSON", "unterminated"});
  expect_read_error(raw("{\"a\":[1 2]}"), {"bad JSON", "expected ',' or ']'"});
  expect_read_error(raw(std::string(40, '[')), {"bad JSON", "must be a JSON object"});
  std::string deep = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  expect_read_error(raw(deep), {"bad JSON", "nested deeper"});
}

TEST_F(SafetensorsTest, DuplicateNames) {
  expect_read_error(raw("{" + kTensor + "," + kTensor + "}", kData8), {"duplicate key \"a\""});
  expect_read_error(raw(R"({"__metadata__":{"k":"1","k":"2"}})"), {"duplicate key \"k\""});
}

TEST_F(SafetensorsTest, UnknownDtype) {
  expect_read_error(raw(R"({"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", kData8),
                    {"tensor 'a'", "unsupported dtype 'F16'"});
  expect_read_error(raw(R"({"a":{"dtype":"XYZ","shape":[],"data_offsets":[0,4]}})", "1234"), {"unsupported dtype"});
  expect_read_error(raw(R"({"a":{"dtype":7,"shape":[],"data_offsets":[0,4]}})", "1234"), {"\"dtype\" must be a string"});
}

TEST_F(SafetensorsTest, MalformedTensorDescriptions) {
  expect_read_error(raw(R"({"a":[1]})"), {"tensor 'a'", "must be described by an object"});
  expect_read_error(raw(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", kData8), {"tensor 'a'", "no \"dtype\""});
  expect_read_error(raw(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", kData8), {"no \"shape\""});
  expect_read_error(raw(R"({"a":{"dtype":"F32","shape":[2]}})", kData8), {"no \"data_offsets\""});
  expect_read_error(raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", kData8),
                    {"unknown field \"x\""});
  expect_read_error(raw(R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", kData8),
                    {"\"shape\" must hold integers"});
  expect_read_error(raw(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", kData8), {"must be an array"});
  expect_read_error(raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})", kData8),
                    {"two integers"});
  expect_read_error(raw(R"({"a":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]}})", kData8),
                    {"too large"});
  expect_read_error(raw(R"({"a":{"dtype":"I64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", kData8),
                    {"too large"});
  expect_read_error(raw(R"({"__metadata__":{"k":1}})"), {"\"__metadata__\" value of \"k\" must be a string"});
  expect_read_error(raw(R"({"__metadata__":[]})"), {"\"__metadata__\" must be an object"});
}

TEST_F(SafetensorsTest, ShapeAndOffsetsSizeMismatch) {
  expect_read_error(raw(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", kData8),
                    {"tensor 'a'", "shape [3]", "needs 12 bytes", "span 8", "mismatch"});
  expect_read_error(raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", kData8), {"end before"});
}

TEST_F(SafetensorsTest, OffsetsOutOfRange) {
  expect_read_error(raw(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", kData8),
                    {"tensor 'a'", "out of range", "holds 8 bytes"});
  expect_read_error(
      raw(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615]}})", kData8),
      {"out of range"});
}

TEST_F(SafetensorsTest, OffsetsOverlapOrLeaveGaps) {
  const std::string b_overlap = R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]})";
  expect_read_error(raw("{" + kTensor + "," + b_overlap + "}", kData8), {"'a' and 'b' overlap"});
  const std::string b_gap = R"("b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]})";
  expect_read_error(raw("{" + kTensor + "," + b_gap + "}", std::string(16, '\0')),
                    {"do not cover", "bytes [8, 12)"});
  expect_read_error(raw("{" + kTensor + "}", std::string(12, '\0')), {"do not cover", "bytes [8, 12)"});
  expect_read_error(raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", kData8),
                    {"do not cover", "bytes [0, 4)"});
  expect_read_error(raw("{}", "x"), {"do not cover", "bytes [0, 1)"});
}

// Truncations and byte flips of a valid file must either read or throw Error: never crash.
TEST_F(SafetensorsTest, CorruptedFilesNeverCrash) {
  const std::string good = path("good.safetensors");
  write(good, sample_file());
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto try_read = [](const std::string& p) {
    try {
      read(p);
    } catch (const Error&) {
    }
  };
  // Each truncation in a new file (truncating one file over and over is slow on ext4).
  for (size_t len = 0; len < bytes.size(); ++len) {
    const std::string p = path("cut" + std::to_string(len));
    std::ofstream(p, std::ios::binary) << bytes.substr(0, len);
    try_read(p);
  }
  // Flips rewrite one file in place: same size, no truncation.
  const std::string p = path("flipped.safetensors");
  std::ofstream(p, std::ios::binary) << bytes;
  std::mt19937 rng(7);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string c = bytes;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k) c[rng() % c.size()] = static_cast<char>(rng() & 0xFF);
    {
      std::fstream out(p, std::ios::binary | std::ios::in | std::ios::out);
      out << c;
    }
    try_read(p);
  }
}

// ---- writing ----

TEST_F(SafetensorsTest, WriteOverwritesAtomicallyAndLeavesNoTemp) {
  const std::string p = path("ckpt.safetensors");
  write(p, sample_file());
  File second;
  second.entries.push_back(Entry::from<float>("only", {1}, {42.f}));
  write(p, second);
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  const File g = read(p);
  ASSERT_EQ(g.entries.size(), 1u);
  EXPECT_EQ(g.at("only").values<float>(), std::vector<float>{42.f});
  // A stale temp file from an interrupted earlier write is simply replaced.
  std::ofstream(p + ".tmp") << "garbage";
  write(p, sample_file());
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  EXPECT_EQ(read(p).entries.size(), sample_file().entries.size());
}

TEST_F(SafetensorsTest, WriteFailureNamesPathAndRemovesTemp) {
  const std::string missing_dir = path("no/such/dir/ckpt.safetensors");
  try {
    write(missing_dir, sample_file());
    ADD_FAILURE() << "write into a missing directory succeeded";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(missing_dir), std::string::npos) << m;
    EXPECT_NE(m.find("No such file"), std::string::npos) << m;
  }
  // The rename fails when the target is a non-empty directory: the temp file must be cleaned up.
  const std::string target = path("occupied");
  fs::create_directories(fs::path(target) / "child");
  try {
    write(target, sample_file());
    ADD_FAILURE() << "write over a directory succeeded";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cannot rename"), std::string::npos) << m;
    EXPECT_NE(m.find(target), std::string::npos) << m;
  }
  EXPECT_FALSE(fs::exists(target + ".tmp"));
}

TEST_F(SafetensorsTest, WriteRejectsInvalidFilesBeforeTouchingDisk) {
  const std::string p = path("bad.safetensors");
  auto expect_write_error = [&](const File& f, const std::string& word) {
    try {
      write(p, f);
      ADD_FAILURE() << "write succeeded, expected an error containing " << word;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(p));
    EXPECT_FALSE(fs::exists(p + ".tmp"));
  };
  File dup;
  dup.entries = {Entry::from<float>("w", {1}, {1.f}), Entry::from<float>("w", {1}, {2.f})};
  expect_write_error(dup, "duplicate tensor name 'w'");
  File wrong_size;
  wrong_size.entries = {Entry::from<float>("w", {2}, {1.f, 2.f})};
  wrong_size.entries[0].shape = {3};
  expect_write_error(wrong_size, "needs 12 bytes");
  File bad_dtype;
  bad_dtype.entries = {Entry{"w", "BF16", {1}, std::vector<std::byte>(2)}};
  expect_write_error(bad_dtype, "unsupported dtype 'BF16'");
  File reserved;
  reserved.entries = {Entry::from<float>("__metadata__", {}, {1.f})};
  expect_write_error(reserved, "reserved");
  File bad_utf8;
  bad_utf8.entries = {Entry::from<float>("w\xFF", {}, {1.f})};
  expect_write_error(bad_utf8, "UTF-8");
  File dup_meta;
  dup_meta.metadata = {{"k", "1"}, {"k", "2"}};
  expect_write_error(dup_meta, "duplicate metadata key");
}

// ---- golden fixtures from PyTorch (tests/golden/generate.py) ----

void expect_shape(const File& f, const std::string& name, std::vector<int64_t> shape, const std::string& dtype = "F32") {
  const Entry* e = f.find(name);
  ASSERT_NE(e, nullptr) << "missing " << name;
  EXPECT_EQ(e->shape, shape) << name;
  EXPECT_EQ(e->dtype, dtype) << name;
}

// Every param.X is a parameter (with a grad.X) or a buffer (with a state_after.X) of the same shape;
// counts match.
void expect_consistent_groups(const File& f, size_t params, size_t grads) {
  size_t n_param = 0, n_grad = 0, n_after = 0;
  for (const Entry& e : f.entries) {
    const std::string& n = e.name;
    if (n.rfind("param.", 0) == 0) {
      ++n_param;
      const Entry* grad = f.find("grad." + n.substr(6));
      const Entry* after = f.find("state_after." + n.substr(6));
      ASSERT_TRUE((grad == nullptr) != (after == nullptr)) << n << " needs exactly one of grad. and state_after.";
      const Entry* partner = grad ? grad : after;
      EXPECT_EQ(partner->shape, e.shape) << n;
      if (after) {
        EXPECT_EQ(after->dtype, e.dtype) << n;
      }
    } else if (n.rfind("grad.", 0) == 0) {
      ++n_grad;
      const Entry* param = f.find("param." + n.substr(5));
      ASSERT_NE(param, nullptr) << n;
      EXPECT_EQ(param->shape, e.shape) << n;
    } else if (n.rfind("state_after.", 0) == 0) {
      ++n_after;
    }
  }
  EXPECT_EQ(n_param, params);
  EXPECT_EQ(n_grad, grads);
  EXPECT_EQ(n_after, params - grads);
}

TEST(SafetensorsGolden, LeNet5FixtureHasExpectedKeys) {
  const File f = read(std::string(RAISIN_GOLDEN_DIR) + "/lenet5.safetensors");
  expect_shape(f, "input", {4, 1, 28, 28});
  expect_shape(f, "labels", {4}, "I32");
  expect_shape(f, "weights", {4});
  expect_shape(f, "logits", {4, 10});
  expect_shape(f, "eval_logits", {4, 10});
  expect_shape(f, "loss", {});
  expect_shape(f, "param.features.0.weight", {6, 1, 5, 5});
  expect_shape(f, "param.features.0.bias", {6});
  expect_shape(f, "param.features.3.weight", {16, 6, 5, 5});
  expect_shape(f, "param.classifier.0.weight", {120, 400});
  expect_shape(f, "param.classifier.2.weight", {84, 120});
  expect_shape(f, "param.classifier.4.weight", {10, 84});
  expect_shape(f, "grad.classifier.4.bias", {10});
  expect_consistent_groups(f, 10, 10);
  for (int32_t y : f.at("labels").values<int32_t>()) EXPECT_TRUE(y >= 0 && y < 10) << y;
  for (float w : f.at("weights").values<float>()) EXPECT_TRUE(w >= 0.5f && w <= 2.0f) << w;
  EXPECT_GT(f.at("loss").values<float>()[0], 0.0f);
}

TEST(SafetensorsGolden, ResNetSmallFixtureHasExpectedKeys) {
  const File f = read(std::string(RAISIN_GOLDEN_DIR) + "/resnet_small.safetensors");
  expect_shape(f, "input", {4, 3, 16, 16});
  expect_shape(f, "labels", {4}, "I32");
  expect_shape(f, "weights", {4});
  expect_shape(f, "logits", {4, 10});
  expect_shape(f, "eval_logits", {4, 10});
  expect_shape(f, "loss", {});
  expect_shape(f, "param.conv1.weight", {8, 3, 3, 3});
  expect_shape(f, "param.bn1.running_mean", {8});
  expect_shape(f, "param.bn1.num_batches_tracked", {}, "I64");
  expect_shape(f, "param.layer1.0.conv2.weight", {8, 8, 3, 3});
  expect_shape(f, "param.layer2.0.conv1.weight", {16, 8, 3, 3});
  expect_shape(f, "param.layer2.0.downsample.0.weight", {16, 8, 1, 1});
  expect_shape(f, "param.layer2.0.downsample.1.running_var", {16});
  expect_shape(f, "state_after.layer2.0.downsample.1.running_var", {16});
  expect_shape(f, "param.fc.weight", {10, 16});
  expect_shape(f, "grad.layer2.0.bn2.bias", {16});
  EXPECT_EQ(f.find("grad.bn1.running_mean"), nullptr);  // buffers have no gradient
  EXPECT_EQ(f.find("param.layer1.0.downsample.0.weight"), nullptr);  // 8 -> 8, stride 1: identity shortcut
  expect_consistent_groups(f, 38, 20);
  EXPECT_EQ(f.at("param.bn1.num_batches_tracked").values<int64_t>()[0], 0);
  EXPECT_EQ(f.at("state_after.bn1.num_batches_tracked").values<int64_t>()[0], 1);
  EXPECT_NE(f.at("param.bn1.running_var").values<float>(), f.at("state_after.bn1.running_var").values<float>());
}

}  // namespace
}  // namespace raisin::safetensors
