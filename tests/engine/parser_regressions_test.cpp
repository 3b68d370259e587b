// Tests of the parsers of outside input beyond their own suites: the in-memory parsers that the fuzz
// targets (tests/fuzz) drive give exactly what the file readers give for the same bytes, and faults
// that fuzzing found stay fixed (their inputs are also replayed by the fuzz_replay.<target> tests).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "engine/dataset.h"
#include "engine/error.h"
#include "engine/safetensors.h"

namespace raisin {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

const fs::path kCorpus = fs::path(RAISIN_GOLDEN_DIR) / ".." / "fuzz" / "corpus";

Bytes read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The IDX corpus inputs are: classes - 1, the images file's length (u32 LE), images, labels.
struct IdxInput {
  int classes;
  Bytes images, labels;
};
IdxInput split_idx_input(const Bytes& input) {
  const size_t n = input[1] | input[2] << 8 | input[3] << 16 | size_t(input[4]) << 24;
  return {input[0] + 1, Bytes(input.begin() + 5, input.begin() + 5 + long(n)), Bytes(input.begin() + 5 + long(n), input.end())};
}

class ParserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("raisin_parser_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const Bytes& bytes) {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return path.string();
  }
  fs::path dir_;
};

void expect_same(const Dataset& a, const Dataset& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.count, b.count);
  EXPECT_EQ(a.channels, b.channels);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.classes, b.classes);
  EXPECT_EQ(a.images, b.images);
  EXPECT_EQ(a.labels, b.labels);
}

// The error message `parse` throws, or "" when it does not throw.
template <typename Parse>
std::string error_of(Parse parse) {
  try {
    parse();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST_F(ParserTest, ParseIdxEqualsReadIdxPlainAndGzip) {
  for (const char* seed : {"plain", "gzip", "gzip_images_plain_labels", "two_gzip_members"}) {
    SCOPED_TRACE(seed);
    const IdxInput in = split_idx_input(read_bytes(kCorpus / "idx" / seed));
    const std::string images = write("images", in.images), labels = write("labels", in.labels);
    const Dataset from_file = read_idx(images, labels, in.classes);
    expect_same(parse_idx(in.images, in.labels, in.classes, images, labels), from_file);
    EXPECT_EQ(from_file.count, 3);
  }
}

TEST_F(ParserTest, ParseIdxFailsLikeReadIdx) {
  for (const char* seed : {"bad_magic", "truncated_images", "truncated_gzip", "trailing_bytes", "count_mismatch",
                           "label_out_of_range", "huge_count"}) {
    SCOPED_TRACE(seed);
    const IdxInput in = split_idx_input(read_bytes(kCorpus / "idx" / seed));
    const std::string images = write("images", in.images), labels = write("labels", in.labels);
    const std::string from_file = error_of([&] { read_idx(images, labels, in.classes); });
    EXPECT_NE(from_file, "");
    EXPECT_EQ(error_of([&] { parse_idx(in.images, in.labels, in.classes, images, labels); }), from_file);
  }
}

TEST_F(ParserTest, ParseCifarBinaryEqualsReadCifarBinary) {
  const Bytes batch = read_bytes(kCorpus / "cifar_binary" / "two_records");
  const std::string path = write("data_batch_1.bin", batch);
  expect_same(parse_cifar_binary(batch, path), read_cifar_binary({path}));
  for (const char* seed : {"label_out_of_range", "truncated", "empty"}) {
    SCOPED_TRACE(seed);
    const Bytes bad = read_bytes(kCorpus / "cifar_binary" / seed);
    const std::string bad_path = write(seed, bad);
    const std::string from_file = error_of([&] { read_cifar_binary({bad_path}); });
    EXPECT_NE(from_file, "");
    EXPECT_EQ(error_of([&] { parse_cifar_binary(bad, bad_path); }), from_file);
  }
}

TEST_F(ParserTest, ParseC10jEqualsReadC10j) {
  const Bytes container = read_bytes(kCorpus / "c10j" / "three_records");
  const std::string path = write("test.c10j", container);
  const Dataset from_file = read_c10j(path);
  EXPECT_EQ(from_file.count, 3);
  expect_same(parse_c10j(container, path), from_file);
  for (const char* seed : {"corrupt_scan", "count_too_large", "bad_version", "trailing_bytes", "wrong_width"}) {
    SCOPED_TRACE(seed);
    const Bytes bad = read_bytes(kCorpus / "c10j" / seed);
    const std::string bad_path = write(seed, bad);
    const std::string from_file_error = error_of([&] { read_c10j(bad_path); });
    EXPECT_NE(from_file_error, "");
    EXPECT_EQ(error_of([&] { parse_c10j(bad, bad_path); }), from_file_error);
  }
}

TEST_F(ParserTest, SafetensorsParseEqualsRead) {
  const std::string golden = (fs::path(RAISIN_GOLDEN_DIR) / "lenet5.safetensors").string();
  const safetensors::File from_file = safetensors::read(golden);
  const safetensors::File parsed = safetensors::parse(read_bytes(golden), golden);
  EXPECT_EQ(parsed.metadata, from_file.metadata);
  ASSERT_EQ(parsed.entries.size(), from_file.entries.size());
  for (size_t i = 0; i < parsed.entries.size(); ++i) {
    EXPECT_EQ(parsed.entries[i].name, from_file.entries[i].name);
    EXPECT_EQ(parsed.entries[i].dtype, from_file.entries[i].dtype);
    EXPECT_EQ(parsed.entries[i].shape, from_file.entries[i].shape);
    EXPECT_EQ(parsed.entries[i].data, from_file.entries[i].data);
  }
  for (const char* seed : {"overlap", "gap", "size_mismatch", "huge_shape", "bad_dtype", "deep", "header_too_long",
                           "truncated_json"}) {
    SCOPED_TRACE(seed);
    const Bytes bad = read_bytes(kCorpus / "safetensors" / seed);
    const std::string bad_path = write(seed, bad);
    const std::string from_file_error = error_of([&] { safetensors::read(bad_path); });
    EXPECT_NE(from_file_error, "");
    EXPECT_EQ(error_of([&] { safetensors::parse(bad, bad_path); }), from_file_error);
  }
}

}  // namespace
}  // namespace raisin
