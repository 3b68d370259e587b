// Tests for the data layer (engine/dataset.h): each reader on small files written here (IDX plain and
// gzip, CIFAR-10 binary, C10J made from real JPEG bytes), every kind of malformed file (each must give a
// raisin::Error naming the file and the problem, never a crash), the dataset search order and its error
// message, channel statistics, the synthetic set, and smoke tests on the real data, which skip when the
// data is absent.
#include "engine/dataset.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "engine/error.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// A 32x32 baseline JPEG (quality 75, 4:2:0, standard Huffman tables, like the C10J files) written by
// libjpeg from the gradient R = 8x, G = 8y, B = 128.
const Bytes kGradientJpeg = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x08, 0x06, 0x06, 0x07, 0x06, 0x05, 0x08,
    0x07, 0x07, 0x07, 0x09, 0x09, 0x08, 0x0a, 0x0c, 0x14, 0x0d, 0x0c, 0x0b, 0x0b, 0x0c, 0x19, 0x12,
    0x13, 0x0f, 0x14, 0x1d, 0x1a, 0x1f, 0x1e, 0x1d, 0x1a, 0x1c, 0x1c, 0x20, 0x24, 0x2e, 0x27, 0x20,
    0x22, 0x2c, 0x23, 0x1c, 0x1c, 0x28, 0x37, 0x29, 0x2c, 0x30, 0x31, 0x34, 0x34, 0x34, 0x1f, 0x27,
    0x39, 0x3d, 0x38, 0x32, 0x3c, 0x2e, 0x33, 0x34, 0x32, 0xff, 0xdb, 0x00, 0x43, 0x01, 0x09, 0x09,
    0x09, 0x0c, 0x0b, 0x0c, 0x18, 0x0d, 0x0d, 0x18, 0x32, 0x21, 0x1c, 0x21, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0xff, 0xc0,
    0x00, 0x11, 0x08, 0x00, 0x20, 0x00, 0x20, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11,
    0x01, 0xff, 0xc4, 0x00, 0x1f, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
    0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5, 0x10, 0x00, 0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05,
    0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d, 0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21,
    0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23,
    0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a,
    0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a,
    0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
    0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
    0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
    0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5,
    0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1,
    0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xff, 0xc4, 0x00, 0x1f, 0x01, 0x00, 0x03,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5, 0x11, 0x00,
    0x02, 0x01, 0x02, 0x04, 0x04, 0x03, 0x04, 0x07, 0x05, 0x04, 0x04, 0x00, 0x01, 0x02, 0x77, 0x00,
    0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13,
    0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15,
    0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27,
    0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88,
    0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6,
    0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4,
    0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9,
    0xfa, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00, 0xf2,
    0x68, 0x2c, 0x7a, 0x71, 0x5a, 0x90, 0x58, 0xf4, 0xe2, 0xb4, 0xa0, 0xb1, 0xe9, 0xc5, 0x69, 0xc1,
    0x63, 0xd3, 0x8a, 0xf7, 0xaa, 0xe2, 0xcc, 0xb2, 0xfc, 0x76, 0xda, 0x99, 0xb0, 0x58, 0xf4, 0xe2,
    0xb4, 0xe0, 0xb1, 0xe9, 0xc5, 0x69, 0x41, 0x63, 0xd3, 0x8a, 0xd3, 0x82, 0xc7, 0xa7, 0x15, 0xe6,
    0x55, 0xc5, 0x9f, 0x73, 0x97, 0xe3, 0xb6, 0xd4, 0xcc, 0x82, 0xc7, 0xa7, 0x15, 0xa7, 0x05, 0x8f,
    0x4e, 0x2b, 0x4a, 0x0b, 0x1e, 0x9c, 0x56, 0x9c, 0x16, 0x3d, 0x38, 0xaf, 0x32, 0xae, 0x2c, 0xfc,
    0x5b, 0x2f, 0xc7, 0x6d, 0xa9, 0x9b, 0x05, 0x8f, 0x4e, 0x2b, 0x4e, 0x0b, 0x1e, 0x9c, 0x56, 0x94,
    0x16, 0x3d, 0x38, 0xad, 0x48, 0x2c, 0x7a, 0x71, 0x5e, 0x65, 0x5c, 0x59, 0xf7, 0x39, 0x7e, 0x3b,
    0x6d, 0x4f, 0xff, 0xd9
};

// ---- file builders ----

void put_be32(Bytes& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}
void put_le32(Bytes& out, uint32_t v) {
  for (int s = 0; s < 32; s += 8) out.push_back(uint8_t(v >> s));
}

Bytes idx_images(uint32_t count, uint32_t rows, uint32_t cols, const Bytes& pixels, uint32_t magic = 0x803) {
  Bytes out;
  put_be32(out, magic);
  put_be32(out, count);
  put_be32(out, rows);
  put_be32(out, cols);
  out.insert(out.end(), pixels.begin(), pixels.end());
  return out;
}

Bytes idx_labels(const Bytes& labels, uint32_t magic = 0x801, std::optional<uint32_t> count = {}) {
  Bytes out;
  put_be32(out, magic);
  put_be32(out, count.value_or(uint32_t(labels.size())));
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

Bytes gzip(const Bytes& data) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&z, uLong(data.size())) + 64);
  z.next_in = const_cast<Bytef*>(data.data());
  z.avail_in = uInt(data.size());
  z.next_out = out.data();
  z.avail_out = uInt(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

Bytes pattern(size_t n, uint32_t seed) {
  Bytes out(n);
  uint32_t s = seed * 2654435761u + 12345u;
  for (auto& b : out) {
    s = s * 1664525u + 1013904223u;
    b = uint8_t(s >> 24);
  }
  return out;
}

// A CIFAR-10 binary record: label, then 3 planes of 32x32.
Bytes cifar_record(uint8_t label, uint32_t seed) {
  Bytes out = {label};
  const Bytes pixels = pattern(3072, seed);
  out.insert(out.end(), pixels.begin(), pixels.end());
  return out;
}

// The JPEG header (SOI up to the end of the SOS segment) and the scan data of a baseline JPEG.
std::pair<Bytes, Bytes> split_jpeg(const Bytes& jpeg) {
  size_t pos = 2;
  while (pos + 4 <= jpeg.size()) {
    EXPECT_EQ(jpeg[pos], 0xff);
    const uint8_t marker = jpeg[pos + 1];
    const size_t length = size_t(jpeg[pos + 2]) << 8 | jpeg[pos + 3];
    pos += 2 + length;
    if (marker == 0xda) break;
  }
  return {Bytes(jpeg.begin(), jpeg.begin() + long(pos)), Bytes(jpeg.begin() + long(pos), jpeg.end())};
}

struct C10jRecord {
  uint8_t label;
  Bytes body;
};

Bytes c10j(const Bytes& header, const std::vector<C10jRecord>& records, std::optional<uint32_t> count = {},
           uint32_t version = 1, const char* magic = "C10J") {
  Bytes out(magic, magic + 4);
  put_le32(out, version);
  put_le32(out, count.value_or(uint32_t(records.size())));
  put_le32(out, uint32_t(header.size()));
  out.insert(out.end(), header.begin(), header.end());
  for (const C10jRecord& r : records) {
    out.push_back(r.label);
    out.push_back(uint8_t(r.body.size()));
    out.push_back(uint8_t(r.body.size() >> 8));
    out.insert(out.end(), r.body.begin(), r.body.end());
  }
  return out;
}

// Sets (or unsets, with nullptr) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

using test::error_message;

#define EXPECT_MENTIONS(message, ...)                                              \
  do {                                                                             \
    const std::string message_ = (message);                                        \
    for (const std::string& part_ : std::vector<std::string>{__VA_ARGS__})         \
      EXPECT_NE(message_.find(part_), std::string::npos)                           \
          << "the message does not mention \"" << part_ << "\":\n  " << message_; \
  } while (0)

// A fresh directory per test, removed afterwards.
class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("raisin_data_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string write(const std::string& name, const Bytes& bytes) const {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return p.string();
  }
  std::string write_text(const std::string& name, const std::string& text) const {
    return write(name, Bytes(text.begin(), text.end()));
  }

  // Four small IDX files (5 train, 3 test images of 2x3) under `sub`, train gzip and test plain.
  void write_mnist_like(const std::string& sub) const {
    write(sub + "/train-images-idx3-ubyte.gz", gzip(idx_images(5, 2, 3, pattern(30, 1))));
    write(sub + "/train-labels-idx1-ubyte.gz", gzip(idx_labels({0, 1, 2, 9, 4})));
    write(sub + "/t10k-images-idx3-ubyte", idx_images(3, 2, 3, pattern(18, 2)));
    write(sub + "/t10k-labels-idx1-ubyte", idx_labels({7, 8, 9}));
  }

  fs::path dir_;
};

// ---- IDX ----

TEST_F(DatasetTest, ReadsPlainIdx) {
  const Bytes pixels = pattern(5 * 3 * 4, 1);
  const std::string images = write("images", idx_images(5, 3, 4, pixels));
  const std::string labels = write("labels", idx_labels({3, 0, 9, 9, 1}));
  const Dataset d = read_idx(images, labels);
  EXPECT_EQ(d.name, images);
  EXPECT_EQ(d.count, 5);
  EXPECT_EQ(d.channels, 1);
  EXPECT_EQ(d.height, 3);
  EXPECT_EQ(d.width, 4);
  EXPECT_EQ(d.classes, 10);
  EXPECT_EQ(d.image_size(), 12);
  EXPECT_EQ(d.images, pixels);
  EXPECT_EQ(d.labels, (std::vector<int32_t>{3, 0, 9, 9, 1}));
  EXPECT_TRUE(d.class_names.empty());
  EXPECT_EQ(d.image(2)[0], pixels[24]);
}

// gzip is recognised by its content: a .gz name on a plain file and a plain name on a gzip file.
TEST_F(DatasetTest, ReadsGzipIdxByContentNotName) {
  const Bytes pixels = pattern(7 * 28 * 28, 2);
  const Bytes labels = {1, 2, 3, 4, 5, 6, 0};
  const std::string images_gz = write("images.idx", gzip(idx_images(7, 28, 28, pixels)));
  const std::string labels_plain = write("labels.gz", idx_labels(labels));
  const Dataset d = read_idx(images_gz, labels_plain);
  EXPECT_EQ(d.count, 7);
  EXPECT_EQ(d.images, pixels);
  EXPECT_EQ(d.labels, (std::vector<int32_t>(labels.begin(), labels.end())));
  // Both gzip, and a label file made of two concatenated gzip members (what `cat a.gz b.gz` makes).
  Bytes two = gzip(Bytes{0, 0, 8, 1, 0, 0, 0, 7, 1, 2, 3});
  const Bytes second = gzip(Bytes{4, 5, 6, 0});
  two.insert(two.end(), second.begin(), second.end());
  const Dataset both = read_idx(images_gz, write("labels2.gz", two));
  EXPECT_EQ(both.labels, d.labels);
}

TEST_F(DatasetTest, IdxClassesBoundTheLabels) {
  const std::string images = write("images", idx_images(2, 1, 1, {5, 6}));
  const std::string labels = write("labels", idx_labels({2, 0}));
  EXPECT_EQ(read_idx(images, labels, 3).classes, 3);
  EXPECT_MENTIONS(error_message([&] { read_idx(images, labels, 2); }), labels, "label out of range", "record 0",
                  "label 2", "0..1");
}

TEST_F(DatasetTest, IdxMissingFile) {
  const std::string labels = write("labels", idx_labels({1}));
  EXPECT_MENTIONS(error_message([&] { read_idx(path("nope-images"), labels); }), path("nope-images"),
                  "No such file or directory");
  const std::string images = write("images", idx_images(1, 1, 1, {0}));
  EXPECT_MENTIONS(error_message([&] { read_idx(images, path("nope-labels")); }), path("nope-labels"),
                  "No such file or directory");
  EXPECT_MENTIONS(error_message([&] { read_idx(dir_.string(), labels); }), dir_.string(), "directory");
}

TEST_F(DatasetTest, IdxBadMagic) {
  const std::string labels = write("labels", idx_labels({1, 2}));
  // Images and labels swapped: each file's magic names what it is.
  const std::string swapped = write("swapped", idx_labels({1, 2}));
  EXPECT_MENTIONS(error_message([&] { read_idx(swapped, labels); }), swapped, "bad magic", "expected 0x00000803",
                  "found 0x00000801", "labels file");
  const std::string images = write("images", idx_images(2, 1, 1, {0, 1}));
  EXPECT_MENTIONS(error_message([&] { read_idx(images, images); }), images, "bad magic", "expected 0x00000801",
                  "found 0x00000803");
  // Not IDX at all, plain and gzip.
  const std::string text = write_text("text", "hello world, not an idx file");
  EXPECT_MENTIONS(error_message([&] { read_idx(text, labels); }), text, "bad magic", "found 0x68656c6c");
  const std::string text_gz = write("text.gz", gzip(Bytes{'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_MENTIONS(error_message([&] { read_idx(text_gz, labels); }), text_gz, "bad magic", "found 0x504b0304");
}

TEST_F(DatasetTest, IdxTruncatedFile) {
  const std::string labels = write("labels", idx_labels({1, 2, 3}));
  // Header cut short.
  const std::string stub = write("stub", Bytes{0, 0, 8, 3, 0, 0});
  EXPECT_MENTIONS(error_message([&] { read_idx(stub, labels); }), stub, "truncated", "16 bytes", "found 6");
  const std::string tiny = write("tiny", Bytes{0, 0});
  EXPECT_MENTIONS(error_message([&] { read_idx(tiny, labels); }), tiny, "truncated", "found 2");
  const std::string empty = write("empty", Bytes{});
  EXPECT_MENTIONS(error_message([&] { read_idx(empty, labels); }), empty, "truncated", "found 0");
  // Pixels cut short: 3 images of 4x4 need 16 + 48 bytes.
  Bytes images = idx_images(3, 4, 4, pattern(48, 3));
  images.resize(50);
  const std::string cut = write("cut", images);
  EXPECT_MENTIONS(error_message([&] { read_idx(cut, labels); }), cut, "truncated", "expected 64 bytes", "found 50");
  // The same, gzip-compressed: the decompressed data is short.
  const std::string cut_gz = write("cut.gz", gzip(images));
  EXPECT_MENTIONS(error_message([&] { read_idx(cut_gz, labels); }), cut_gz, "truncated", "expected 64 bytes",
                  "decompressed", "found 50");
  // Labels cut short.
  const std::string good = write("good", idx_images(3, 4, 4, pattern(48, 3)));
  Bytes short_labels = idx_labels({1, 2, 3});
  short_labels.pop_back();
  const std::string cut_labels = write("cut_labels", short_labels);
  EXPECT_MENTIONS(error_message([&] { read_idx(good, cut_labels); }), cut_labels, "truncated", "expected 11 bytes",
                  "found 10");
  // A header promising far more than a small gzip file could ever hold fails before allocating.
  const std::string huge = write("huge.gz", gzip(idx_images(400000, 100, 100, pattern(100, 4))));
  EXPECT_MENTIONS(error_message([&] { read_idx(huge, labels); }), huge, "truncated", "expected 4000000016 bytes",
                  "bytes of gzip data cannot hold");
  const std::string absurd = write("absurd", idx_images(4000000, 60000, 60000, pattern(100, 4)));
  EXPECT_MENTIONS(error_message([&] { read_idx(absurd, labels); }), absurd, "implausible IDX dimensions",
                  "4000000x60000x60000");
}

TEST_F(DatasetTest, IdxTrailingBytes) {
  Bytes images = idx_images(2, 2, 2, pattern(8, 5));
  images.push_back(42);
  const std::string labels = write("labels", idx_labels({1, 2}));
  const std::string extra = write("extra", images);
  EXPECT_MENTIONS(error_message([&] { read_idx(extra, labels); }), extra, "1 unexpected trailing bytes", "24 bytes");
  const std::string extra_gz = write("extra.gz", gzip(images));
  EXPECT_MENTIONS(error_message([&] { read_idx(extra_gz, labels); }), extra_gz, "trailing", "decompressed");
}

TEST_F(DatasetTest, IdxBadGzipStream) {
  const std::string labels = write("labels", idx_labels(Bytes(100, 1)));
  const Bytes gz = gzip(idx_images(100, 8, 8, pattern(6400, 6)));
  // Cut in the middle of the compressed data.
  const std::string cut = write("cut.gz", Bytes(gz.begin(), gz.begin() + long(gz.size() / 2)));
  EXPECT_MENTIONS(error_message([&] { read_idx(cut, labels); }), cut, "bad gzip stream", "truncated .gz");
  // A damaged CRC (the 4 bytes before the 4-byte length at the end).
  Bytes bad_crc = gz;
  bad_crc[bad_crc.size() - 8] ^= 0xff;
  const std::string crc = write("crc.gz", bad_crc);
  EXPECT_MENTIONS(error_message([&] { read_idx(crc, labels); }), crc, "bad gzip stream", "incorrect data check");
  // Garbage compressed data right after the 10-byte gzip header.
  Bytes garbage = gz;
  for (size_t k = 10; k < 60; ++k) garbage[k] = 0xff;
  const std::string bad = write("garbage.gz", garbage);
  EXPECT_MENTIONS(error_message([&] { read_idx(bad, labels); }), bad, "bad gzip stream");
  // Trailing garbage after a complete stream.
  Bytes trailing = gz;
  trailing.insert(trailing.end(), {1, 2, 3});
  const std::string tail = write("tail.gz", trailing);
  EXPECT_MENTIONS(error_message([&] { read_idx(tail, labels); }), tail, "bad gzip stream", "3 bytes of trailing garbage");
  // Only the gzip magic.
  const std::string magic_only = write("magic.gz", Bytes{0x1f, 0x8b});
  EXPECT_MENTIONS(error_message([&] { read_idx(magic_only, labels); }), magic_only, "bad gzip stream");
}

TEST_F(DatasetTest, IdxCountMismatch) {
  const std::string images = write("images", idx_images(3, 1, 2, pattern(6, 7)));
  const std::string labels = write("labels", idx_labels({1, 2}));
  EXPECT_MENTIONS(error_message([&] { read_idx(images, labels); }), labels, images, "count mismatch", "2 labels",
                  "3 images");
}

TEST_F(DatasetTest, IdxLabelOutOfRange) {
  const std::string images = write("images", idx_images(4, 1, 1, {1, 2, 3, 4}));
  const std::string labels = write("labels.gz", gzip(idx_labels({1, 2, 200, 10})));
  EXPECT_MENTIONS(error_message([&] { read_idx(images, labels); }), labels, "label out of range", "record 2",
                  "label 200", "0..9");
}

TEST_F(DatasetTest, IdxWrongImageSize) {
  const std::string labels = write("labels", idx_labels({}));
  const std::string zero_rows = write("zero_rows", idx_images(1, 0, 5, {}));
  EXPECT_MENTIONS(error_message([&] { read_idx(zero_rows, labels); }), zero_rows, "wrong image size", "0x5");
  const std::string none = write("none", idx_images(0, 28, 28, {}));
  EXPECT_MENTIONS(error_message([&] { read_idx(none, labels); }), none, "no images");
  EXPECT_MENTIONS(error_message([&] { read_idx(none, labels, 0); }), "classes");
}

// ---- CIFAR-10 binary ----

TEST_F(DatasetTest, ReadsCifarBinaryBatches) {
  Bytes first, second;
  for (int r = 0; r < 3; ++r) {
    const Bytes rec = cifar_record(uint8_t(r * 3), uint32_t(r));
    first.insert(first.end(), rec.begin(), rec.end());
  }
  for (int r = 0; r < 2; ++r) {
    const Bytes rec = cifar_record(uint8_t(9 - r), uint32_t(10 + r));
    second.insert(second.end(), rec.begin(), rec.end());
  }
  const std::string a = write("bin/data_batch_1.bin", first), b = write("bin/data_batch_2.bin", second);
  const Dataset d = read_cifar_binary({a, b});
  EXPECT_EQ(d.count, 5);
  EXPECT_EQ(d.channels, 3);
  EXPECT_EQ(d.height, 32);
  EXPECT_EQ(d.width, 32);
  EXPECT_EQ(d.classes, 10);
  EXPECT_EQ(d.labels, (std::vector<int32_t>{0, 3, 6, 9, 8}));
  for (int r = 0; r < 5; ++r) {
    const Bytes expected = pattern(3072, r < 3 ? uint32_t(r) : uint32_t(7 + r));
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), d.image(r))) << "record " << r;
  }
  EXPECT_TRUE(d.class_names.empty());
  // Class names from batches.meta.txt beside the first file (blank lines ignored).
  write_text("bin/batches.meta.txt", "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
  const Dataset named = read_cifar_binary({a});
  ASSERT_EQ(named.class_names.size(), 10u);
  EXPECT_EQ(named.class_names[0], "airplane");
  EXPECT_EQ(named.class_names[9], "truck");
  write_text("bin/batches.meta.txt", "airplane\nautomobile\nbird\n");
  EXPECT_MENTIONS(error_message([&] { read_cifar_binary({a}); }), path("bin/batches.meta.txt"), "expected 10 class names",
                  "found 3");
}

TEST_F(DatasetTest, CifarBinaryErrors) {
  EXPECT_MENTIONS(error_message([&] { read_cifar_binary({}); }), "no files");
  EXPECT_MENTIONS(error_message([&] { read_cifar_binary({path("missing.bin")}); }), path("missing.bin"),
                  "No such file or directory");
  const std::string empty = write("empty.bin", {});
  EXPECT_MENTIONS(error_message([&] { read_cifar_binary({empty}); }), empty, "empty");
  // A record size that is not 3073: 2 records and 100 bytes.
  Bytes odd = cifar_record(1, 1);
  const Bytes rec = cifar_record(2, 2);
  odd.insert(odd.end(), rec.begin(), rec.end());
  odd.insert(odd.end(), 100, 0);
  const std::string odd_path = write("odd.bin", odd);
  EXPECT_MENTIONS(error_message([&] { read_cifar_binary({odd_path}); }), odd_path, "wrong record size", "6246 bytes",
                  "3073", "100 bytes left over");
  // A label of 10 in record 1 of the second file.
  const std::string good = write("good.bin", rec);
  Bytes bad_label = rec;
  const Bytes ten = cifar_record(10, 3);
  bad_label.insert(bad_label.end(), ten.begin(), ten.end());
  const std::string bad = write("bad.bin", bad_label);
  EXPECT_MENTIONS(error_message([&] { read_cifar_binary({good, bad}); }), bad, "label out of range", "record 1",
                  "label 10");
}

// ---- C10J ----

TEST_F(DatasetTest, ReadsC10jFromJpegBytes) {
  const auto [header, body] = split_jpeg(kGradientJpeg);
  ASSERT_GT(header.size(), 300u);
  ASSERT_EQ(body[body.size() - 2], 0xff);
  ASSERT_EQ(body[body.size() - 1], 0xd9);
  const std::string file = write("c/x.c10j", c10j(header, {{0, body}, {7, body}, {9, body}}));
  const Dataset d = read_c10j(file);
  EXPECT_EQ(d.name, file);
  EXPECT_EQ(d.count, 3);
  EXPECT_EQ(d.channels, 3);
  EXPECT_EQ(d.height, 32);
  EXPECT_EQ(d.width, 32);
  EXPECT_EQ(d.classes, 10);
  EXPECT_EQ(d.labels, (std::vector<int32_t>{0, 7, 9}));
  EXPECT_TRUE(d.class_names.empty());
  // Planar R, G, B close to the gradient (JPEG is lossy; 4:2:0 blurs the colour).
  double error[3] = {0, 0, 0};
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) {
      const int expected[3] = {8 * x, 8 * y, 128};
      for (int c = 0; c < 3; ++c) error[c] += std::abs(int(d.image(0)[c * 1024 + y * 32 + x]) - expected[c]);
    }
  for (int c = 0; c < 3; ++c) EXPECT_LT(error[c] / 1024, 6.0) << "channel " << c;
  EXPECT_TRUE(std::equal(d.image(0), d.image(1), d.image(1)));
  EXPECT_TRUE(std::equal(d.image(0), d.image(1), d.image(2)));
  write_text("c/batches.meta.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n");
  EXPECT_EQ(read_c10j(file).class_names, (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}));
}

// Records cut from the real test.c10j, rewritten as a small container, decode to the same pixels.
TEST_F(DatasetTest, ReadsRecordsOfTheRealC10j) {
  std::string source;
  for (const std::string& dir : dataset_search_path("cifar10"))
    if (fs::is_regular_file(fs::path(dir) / "test.c10j")) {
      source = (fs::path(dir) / "test.c10j").string();
      break;
    }
  if (source.empty()) GTEST_SKIP() << "test.c10j not found in the cifar10 search path (shared/data/cifar10-jpeg75)";
  std::ifstream in(source, std::ios::binary);
  const Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const uint32_t hlen = bytes[12] | bytes[13] << 8;
  const Bytes header(bytes.begin() + 16, bytes.begin() + 16 + hlen);
  std::vector<C10jRecord> records;
  size_t pos = 16 + hlen;
  for (int r = 0; r < 6; ++r) {
    const size_t blen = bytes[pos + 1] | bytes[pos + 2] << 8;
    records.push_back({bytes[pos], Bytes(bytes.begin() + long(pos + 3), bytes.begin() + long(pos + 3 + blen))});
    pos += 3 + blen;
  }
  const Dataset small = read_c10j(write("small.c10j", c10j(header, records)));
  const Dataset full = read_c10j(source);
  ASSERT_EQ(small.count, 6);
  for (int r = 0; r < 6; ++r) {
    EXPECT_EQ(small.labels[r], full.labels[r]);
    EXPECT_TRUE(std::equal(small.image(r), small.image(r) + 3072, full.image(r))) << "record " << r;
  }
}

TEST_F(DatasetTest, C10jErrors) {
  const auto [header, body] = split_jpeg(kGradientJpeg);
  const std::vector<C10jRecord> three = {{0, body}, {1, body}, {2, body}};
  EXPECT_MENTIONS(error_message([&] { read_c10j(path("missing.c10j")); }), path("missing.c10j"),
                  "No such file or directory");
  const std::string magic = write("magic.c10j", c10j(header, three, {}, 1, "C10K"));
  EXPECT_MENTIONS(error_message([&] { read_c10j(magic); }), magic, "bad magic", "expected 43 31 30 4a", "found 43 31 30 4b");
  const std::string version = write("version.c10j", c10j(header, three, {}, 2));
  EXPECT_MENTIONS(error_message([&] { read_c10j(version); }), version, "unsupported C10J version 2");
  const std::string stub = write("stub.c10j", Bytes{'C', '1', '0', 'J', 1, 0});
  EXPECT_MENTIONS(error_message([&] { read_c10j(stub); }), stub, "truncated", "16 bytes", "found 6");
  const Bytes full = c10j(header, three);
  const std::string short_header = write("short_header.c10j", Bytes(full.begin(), full.begin() + 100));
  EXPECT_MENTIONS(error_message([&] { read_c10j(short_header); }), short_header, "truncated", "JPEG header");
  // Cut inside the last record's body.
  const std::string cut = write("cut.c10j", Bytes(full.begin(), full.end() - 20));
  EXPECT_MENTIONS(error_message([&] { read_c10j(cut); }), cut, "truncated", "record 2");
  // The count promises more records than there are, or fewer.
  const std::string more = write("more.c10j", c10j(header, three, 4));
  EXPECT_MENTIONS(error_message([&] { read_c10j(more); }), more, "truncated", "4 records");
  const std::string fewer = write("fewer.c10j", c10j(header, three, 2));
  EXPECT_MENTIONS(error_message([&] { read_c10j(fewer); }), fewer, "trailing bytes", "last of 2 records");
  const std::string none = write("none.c10j", c10j(header, {}));
  EXPECT_MENTIONS(error_message([&] { read_c10j(none); }), none, "no images");
  // A label of 10.
  const std::string label = write("label.c10j", c10j(header, {{0, body}, {10, body}}));
  EXPECT_MENTIONS(error_message([&] { read_c10j(label); }), label, "label out of range", "record 1", "label 10");
  // A header that is not JPEG.
  Bytes not_jpeg = header;
  not_jpeg[0] = 0x00;
  const std::string soi = write("soi.c10j", c10j(not_jpeg, three));
  EXPECT_MENTIONS(error_message([&] { read_c10j(soi); }), soi, "SOI", "found 00 d8");
}

TEST_F(DatasetTest, C10jCorruptJpeg) {
  const auto [header, body] = split_jpeg(kGradientJpeg);
  // Scan data cut in half (libjpeg warns "premature end", which must be an error, not a grey image).
  const Bytes half(body.begin(), body.begin() + long(body.size() / 2));
  const std::string cut = write("cut.c10j", c10j(header, {{0, body}, {1, body}, {2, half}, {3, body}}));
  EXPECT_MENTIONS(error_message([&] { read_c10j(cut); }), "corrupt JPEG in record 2 of " + cut + ": ");
  // Scan data replaced by garbage, and a record that is only an EOI marker.
  Bytes garbage(body.size(), 0);
  for (size_t k = 0; k < garbage.size(); ++k) garbage[k] = uint8_t(k * 37 % 255);
  garbage[garbage.size() - 2] = 0xff, garbage[garbage.size() - 1] = 0xd9;
  const std::string bad = write("bad.c10j", c10j(header, {{0, body}, {1, garbage}}));
  EXPECT_MENTIONS(error_message([&] { read_c10j(bad); }), "corrupt JPEG in record 1 of " + bad);
  const std::string eoi = write("eoi.c10j", c10j(header, {{0, Bytes{0xff, 0xd9}}}));
  EXPECT_MENTIONS(error_message([&] { read_c10j(eoi); }), "corrupt JPEG in record 0 of " + eoi);
  // A header cut before its Huffman tables.
  const std::string tables = write("tables.c10j", c10j(Bytes(header.begin(), header.begin() + 200), {{0, body}}));
  EXPECT_MENTIONS(error_message([&] { read_c10j(tables); }), "corrupt JPEG in record 0 of " + tables);
  // Among several corrupt records, the first is reported (the decode runs in parallel).
  std::vector<C10jRecord> many(2000, C10jRecord{1, body});
  many[1500].body = half;
  many[700].body = half;
  many[1900].body = garbage;
  const std::string first = write("first.c10j", c10j(header, many));
  EXPECT_MENTIONS(error_message([&] { read_c10j(first); }), "corrupt JPEG in record 700 of " + first);
}

TEST_F(DatasetTest, C10jWrongImageSize) {
  auto [header, body] = split_jpeg(kGradientJpeg);
  // The SOF0 segment: ff c0, length (2), precision (1), height (2), width (2), components (1).
  size_t sof = 0;
  for (size_t k = 2; k + 1 < header.size(); ++k)
    if (header[k] == 0xff && header[k + 1] == 0xc0) sof = k;
  ASSERT_GT(sof, 0u);
  Bytes tall = header;
  tall[sof + 5] = 0, tall[sof + 6] = 48;  // height 48
  const std::string file = write("tall.c10j", c10j(tall, {{0, body}}));
  EXPECT_MENTIONS(error_message([&] { read_c10j(file); }), file, "wrong image size", "record 0", "48x32x3",
                  "expected 32x32x3");
}

// ---- channel statistics ----

TEST_F(DatasetTest, ChannelStatisticsAreExact) {
  Dataset d;
  d.name = "tiny";
  d.count = 3, d.channels = 2, d.height = 2, d.width = 2;
  d.images = pattern(24, 9);
  d.labels = {0, 0, 0};
  const Normalization n = channel_statistics(d);
  ASSERT_EQ(n.mean.size(), 2u);
  ASSERT_EQ(n.stddev.size(), 2u);
  for (int c = 0; c < 2; ++c) {
    double sum = 0, squares = 0;
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 4; ++k) {
        const double v = d.images[i * 8 + c * 4 + k] / 255.0;
        sum += v;
        squares += v * v;
      }
    const double mean = sum / 12, var = squares / 12 - mean * mean;
    EXPECT_NEAR(n.mean[c], mean, 1e-6);
    EXPECT_NEAR(n.stddev[c], std::sqrt(var), 1e-6);
  }
  Dataset empty;
  empty.name = "empty";
  EXPECT_MENTIONS(error_message([&] { channel_statistics(empty); }), "empty");
  d.images.pop_back();
  EXPECT_MENTIONS(error_message([&] { channel_statistics(d); }), "tiny", "23 pixel bytes");
}

// ---- synthetic ----

// Nearest class mean, fitted on `train`, scored on `test`.
double nearest_mean_accuracy(const Dataset& train, const Dataset& test) {
  const int64_t size = train.image_size();
  std::vector<double> means(size_t(train.classes * size), 0.0);
  std::vector<int64_t> counts(size_t(train.classes), 0);
  for (int64_t i = 0; i < train.count; ++i) {
    ++counts[train.labels[i]];
    for (int64_t k = 0; k < size; ++k) means[train.labels[i] * size + k] += train.image(i)[k];
  }
  for (int c = 0; c < train.classes; ++c)
    for (int64_t k = 0; k < size; ++k) means[c * size + k] /= double(std::max<int64_t>(1, counts[c]));
  int64_t correct = 0;
  for (int64_t i = 0; i < test.count; ++i) {
    int best = 0;
    double best_distance = INFINITY;
    for (int c = 0; c < train.classes; ++c) {
      double distance = 0;
      for (int64_t k = 0; k < size; ++k) distance += std::pow(test.image(i)[k] - means[c * size + k], 2);
      if (distance < best_distance) best_distance = distance, best = c;
    }
    correct += best == test.labels[i];
  }
  return double(correct) / double(test.count);
}

TEST_F(DatasetTest, SyntheticIsSeededBalancedAndLearnable) {
  const Dataset a = make_synthetic(1000, 3, 8, 6, 7, 42);
  const Dataset b = make_synthetic(1000, 3, 8, 6, 7, 42);
  const Dataset other = make_synthetic(1000, 3, 8, 6, 7, 43);
  EXPECT_EQ(a.count, 1000);
  EXPECT_EQ(a.channels, 3);
  EXPECT_EQ(a.height, 8);
  EXPECT_EQ(a.width, 6);
  EXPECT_EQ(a.classes, 7);
  EXPECT_EQ(a.images.size(), size_t(1000 * 3 * 8 * 6));
  EXPECT_EQ(a.images, b.images);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_NE(a.images, other.images);
  EXPECT_NE(a.labels, other.labels);
  std::vector<int> counts(7, 0);
  for (int32_t l : a.labels) {
    ASSERT_GE(l, 0);
    ASSERT_LT(l, 7);
    ++counts[l];
  }
  for (int c = 0; c < 7; ++c) EXPECT_TRUE(counts[c] == 142 || counts[c] == 143) << "class " << c << ": " << counts[c];
  // Shuffled: not simply i mod classes.
  int in_order = 0;
  for (int i = 0; i < 1000; ++i) in_order += a.labels[i] == i % 7;
  EXPECT_LT(in_order, 500);
  // Learnable: a nearest-class-mean classifier separates the classes of a held-out part.
  Dataset train = a, test = a;
  train.count = 800;
  test.count = 200;
  test.images.erase(test.images.begin(), test.images.begin() + 800 * a.image_size());
  test.labels.erase(test.labels.begin(), test.labels.begin() + 800);
  EXPECT_GT(nearest_mean_accuracy(train, test), 0.95);
  EXPECT_MENTIONS(error_message([] { make_synthetic(0, 1, 2, 2, 2, 1); }), "make_synthetic", "count 0");
  EXPECT_MENTIONS(error_message([] { make_synthetic(10, 1, 2, 2, 0, 1); }), "make_synthetic", "classes 0");
}

TEST_F(DatasetTest, LoadsSyntheticWithSharedPrototypes) {
  const TrainTest t = load_dataset("synthetic");
  EXPECT_EQ(t.train.name, "synthetic/train");
  EXPECT_EQ(t.test.name, "synthetic/test");
  EXPECT_EQ(t.train.count, 10000);
  EXPECT_EQ(t.test.count, 2000);
  EXPECT_EQ(t.train.images.size(), size_t(10000 * 784));
  EXPECT_EQ(t.test.images.size(), size_t(2000 * 784));
  EXPECT_EQ(t.test.labels.size(), 2000u);
  EXPECT_EQ(t.test.channels * t.test.height * t.test.width, 784);
  EXPECT_EQ(t.train.classes, 10);
  EXPECT_EQ(t.test.classes, 10);
  ASSERT_EQ(t.normalization.mean.size(), 1u);
  EXPECT_GT(t.normalization.stddev[0], 0.1f);
  EXPECT_NE(t.source.find("synthetic"), std::string::npos);
  EXPECT_GT(nearest_mean_accuracy(t.train, t.test), 0.95);
  const TrainTest again = load_dataset("synthetic");
  EXPECT_EQ(again.train.images, t.train.images);
  EXPECT_EQ(again.test.labels, t.test.labels);
}

// ---- load_dataset: names, search order, errors ----

TEST_F(DatasetTest, NamesAndUnknownName) {
  EXPECT_EQ(dataset_names(), (std::vector<std::string>{"mnist", "fashion-mnist", "cifar10", "synthetic"}));
  EXPECT_MENTIONS(error_message([] { load_dataset("imagenet"); }), "unknown dataset 'imagenet'", "mnist",
                  "fashion-mnist", "cifar10", "synthetic");
  EXPECT_MENTIONS(error_message([] { dataset_search_path("imagenet"); }), "unknown dataset");
}

TEST_F(DatasetTest, SearchPathOrder) {
  const std::string repo = fs::path(RAISIN_GOLDEN_DIR).parent_path().parent_path().lexically_normal().string();
  const std::string shared = (fs::path(repo).parent_path() / "shared" / "data").string();
  {
    ScopedEnv env("RAISIN_DATA_DIR", nullptr);
    EXPECT_EQ(dataset_search_path("mnist"), (std::vector<std::string>{repo + "/.data/mnist", shared + "/mnist"}));
    EXPECT_EQ(dataset_search_path("fashion-mnist"),
              (std::vector<std::string>{repo + "/.data/fashion-mnist", shared + "/fashion-mnist",
                                        "/usr/share/datasets/fashion-mnist"}));
    EXPECT_EQ(dataset_search_path("cifar10"),
              (std::vector<std::string>{repo + "/.data/cifar10-jpeg75", shared + "/cifar10-jpeg75"}));
    EXPECT_TRUE(dataset_search_path("synthetic").empty());
  }
  {
    ScopedEnv env("RAISIN_DATA_DIR", "/srv/data");
    EXPECT_EQ(dataset_search_path("mnist"),
              (std::vector<std::string>{"/srv/data/mnist", repo + "/.data/mnist", shared + "/mnist"}));
    // --data-dir replaces the whole search.
    EXPECT_EQ(dataset_search_path("cifar10", "/mine"), (std::vector<std::string>{"/mine", "/mine/cifar10-jpeg75"}));
  }
}

TEST_F(DatasetTest, LoadsFromDataDirAndItsSubfolder) {
  write_mnist_like("flat");
  const TrainTest flat = load_dataset("mnist", path("flat"));
  EXPECT_EQ(flat.source, path("flat"));
  EXPECT_EQ(flat.train.name, "mnist/train");
  EXPECT_EQ(flat.test.name, "mnist/test");
  EXPECT_EQ(flat.train.count, 5);
  EXPECT_EQ(flat.test.count, 3);
  EXPECT_EQ(flat.train.images, pattern(30, 1));
  EXPECT_EQ(flat.test.labels, (std::vector<int32_t>{7, 8, 9}));
  ASSERT_EQ(flat.normalization.mean.size(), 1u);
  EXPECT_NEAR(flat.normalization.mean[0], channel_statistics(flat.train).mean[0], 0.0);
  write_mnist_like("root/fashion-mnist");
  const TrainTest sub = load_dataset("fashion-mnist", path("root"));
  EXPECT_EQ(sub.source, path("root/fashion-mnist"));
  EXPECT_EQ(sub.train.name, "fashion-mnist/train");
}

TEST_F(DatasetTest, EnvironmentComesBeforeTheDefaultsAndDataDirBeforeBoth) {
  write_mnist_like("env/mnist");
  write_mnist_like("explicit");
  ScopedEnv env("RAISIN_DATA_DIR", path("env").c_str());
  EXPECT_EQ(load_dataset("mnist").source, path("env/mnist"));
  EXPECT_EQ(load_dataset("mnist", path("explicit")).source, path("explicit"));
}

TEST_F(DatasetTest, NotFoundListsEverySearchedPlaceAndHowToGetTheData) {
  // A folder with only the training files, and an empty one.
  write("partial/train-images-idx3-ubyte.gz", gzip(idx_images(1, 1, 1, {0})));
  write("partial/train-labels-idx1-ubyte", idx_labels({0}));
  std::string message = error_message([&] { load_dataset("mnist", path("partial")); });
  EXPECT_MENTIONS(message, "dataset 'mnist' not found", path("partial") + " (missing t10k-images-idx3-ubyte[.gz], "
                  "t10k-labels-idx1-ubyte[.gz])", path("partial/mnist") + " (no such directory)", "--data-dir",
                  "RAISIN_DATA_DIR");
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
  message = error_message([&] { load_dataset("fashion-mnist", path("partial")); });
  EXPECT_MENTIONS(message, "dataset 'fashion-mnist' not found", path("partial/fashion-mnist"),
                  "apt-get install -y dataset-fashion-mnist", "--data-dir");
  message = error_message([&] { load_dataset("cifar10", path("partial")); });
  EXPECT_MENTIONS(message, "dataset 'cifar10' not found", path("partial/cifar10-jpeg75"), "train.c10j",
                  "data_batch_1.bin", "--data-dir");
  // Without --data-dir, every default folder is listed.
  ScopedEnv env("RAISIN_DATA_DIR", path("nowhere").c_str());
  std::vector<std::string> expected_dirs = dataset_search_path("cifar10");
  bool all_absent = true;
  for (const std::string& dir : expected_dirs) {
    all_absent = all_absent && !fs::exists(fs::path(dir) / "test.c10j") && !fs::exists(fs::path(dir) / "test_batch.bin");
  }
  if (all_absent) {
    message = error_message([] { load_dataset("cifar10"); });
    for (const std::string& dir : expected_dirs) EXPECT_MENTIONS(message, dir);
  }
}

TEST_F(DatasetTest, LoadsCifarFromC10jOrBinaryBatches) {
  const auto [header, body] = split_jpeg(kGradientJpeg);
  write("jpeg/train.c10j", c10j(header, {{1, body}, {2, body}}));
  write("jpeg/test.c10j", c10j(header, {{3, body}}));
  const TrainTest jpeg = load_dataset("cifar10", path("jpeg"));
  EXPECT_EQ(jpeg.train.count, 2);
  EXPECT_EQ(jpeg.test.count, 1);
  EXPECT_EQ(jpeg.train.name, "cifar10/train");
  EXPECT_NE(jpeg.source.find(path("jpeg")), std::string::npos);
  EXPECT_NE(jpeg.source.find("C10J"), std::string::npos);
  ASSERT_EQ(jpeg.normalization.mean.size(), 3u);
  EXPECT_NEAR(jpeg.normalization.mean[2], 128 / 255.0, 0.02);
  for (int k = 1; k <= 5; ++k) write("bin/cifar10-jpeg75/data_batch_" + std::to_string(k) + ".bin", cifar_record(uint8_t(k), k));
  write("bin/cifar10-jpeg75/test_batch.bin", cifar_record(0, 0));
  const TrainTest binary = load_dataset("cifar10", path("bin"));
  EXPECT_EQ(binary.train.count, 5);
  EXPECT_EQ(binary.test.count, 1);
  EXPECT_EQ(binary.train.labels, (std::vector<int32_t>{1, 2, 3, 4, 5}));
  EXPECT_NE(binary.source.find("binary"), std::string::npos);
}

// A malformed file in the folder that holds the data is an error, not a reason to look elsewhere.
TEST_F(DatasetTest, MalformedFileInTheFoundFolderThrows) {
  write_mnist_like("bad");
  const std::string labels = write("bad/t10k-labels-idx1-ubyte", idx_labels({7, 8, 10}));
  EXPECT_MENTIONS(error_message([&] { load_dataset("mnist", path("bad")); }), labels, "label out of range", "record 2");
}

// ---- real data (skips when absent) ----

std::optional<TrainTest> load_if_present(const std::string& name, const std::string& marker) {
  for (const std::string& dir : dataset_search_path(name))
    if (fs::exists(fs::path(dir) / marker) || fs::exists(fs::path(dir) / (marker + ".gz"))) return load_dataset(name);
  return std::nullopt;
}

std::vector<int64_t> class_counts(const Dataset& d) {
  std::vector<int64_t> counts(size_t(d.classes), 0);
  for (int32_t l : d.labels) ++counts[size_t(l)];
  return counts;
}

TEST(RealData, Mnist) {
  const std::optional<TrainTest> t = load_if_present("mnist", "t10k-labels-idx1-ubyte");
  if (!t) GTEST_SKIP() << "MNIST not found (shared/data/mnist or $RAISIN_DATA_DIR/mnist)";
  EXPECT_EQ(t->train.count, 60000);
  EXPECT_EQ(t->test.count, 10000);
  EXPECT_EQ(t->train.image_size(), 784);
  EXPECT_EQ(class_counts(t->train), (std::vector<int64_t>{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}));
  EXPECT_EQ(class_counts(t->test), (std::vector<int64_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}));
  EXPECT_NEAR(t->normalization.mean[0], 0.1307, 5e-4);
  EXPECT_NEAR(t->normalization.stddev[0], 0.3081, 5e-4);
}

TEST(RealData, FashionMnist) {
  const std::optional<TrainTest> t = load_if_present("fashion-mnist", "t10k-labels-idx1-ubyte");
  if (!t) GTEST_SKIP() << "Fashion-MNIST not found (apt-get install dataset-fashion-mnist)";
  EXPECT_EQ(t->train.count, 60000);
  EXPECT_EQ(t->test.count, 10000);
  EXPECT_EQ(class_counts(t->train), std::vector<int64_t>(10, 6000));
  EXPECT_EQ(class_counts(t->test), std::vector<int64_t>(10, 1000));
  EXPECT_NEAR(t->normalization.mean[0], 0.2860, 5e-4);
  EXPECT_NEAR(t->normalization.stddev[0], 0.3530, 5e-4);
}

TEST(RealData, Cifar10Jpeg) {
  const std::optional<TrainTest> t = load_if_present("cifar10", "test.c10j");
  if (!t) GTEST_SKIP() << "CIFAR-10 C10J not found (shared/data/cifar10-jpeg75)";
  EXPECT_EQ(t->train.count, 50000);
  EXPECT_EQ(t->test.count, 10000);
  EXPECT_EQ(class_counts(t->train), std::vector<int64_t>(10, 5000));
  EXPECT_EQ(class_counts(t->test), std::vector<int64_t>(10, 1000));
  ASSERT_EQ(t->test.class_names.size(), 10u);
  EXPECT_EQ(t->test.class_names[0], "airplane");
  EXPECT_EQ(t->test.class_names[9], "truck");
  // The README's per-channel means of the decoded pixels.
  const Normalization test_stats = channel_statistics(t->test);
  const double expected[3] = {125.99, 123.69, 114.85};
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(test_stats.mean[c] * 255.0, expected[c], 0.01) << "channel " << c;
  const double train_expected[3] = {125.27, 122.93, 113.86};
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(t->normalization.mean[c] * 255.0, train_expected[c], 0.01) << "channel " << c;
}

}  // namespace
}  // namespace raisin
