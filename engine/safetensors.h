// safetensors.h: a strict, self-contained reader and writer of the safetensors format, the checkpoint
// and golden-fixture format raisin shares with the PyTorch ecosystem.
//
// Layout of a file: an 8-byte little-endian header length N, then N bytes of JSON
//   {"__metadata__": {"key": "value", ...},                      (optional, string to string)
//    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// padded with spaces, then the data buffer; offsets are relative to the start of the buffer, and the
// tensors must tile the buffer exactly (no gaps, no overlaps). Data is little-endian, row-major.
//
// Only the dtypes raisin uses are accepted: F32, I32, I64 and U8. Every malformed file is rejected
// with a raisin::Error naming the file and what is wrong; the reader never reads out of bounds.
// write() goes through "<path>.tmp", fsync and rename, so a crash never leaves a half-written file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/error.h"

namespace raisin::safetensors {

// Bytes per element of a supported dtype ("F32", "I32", "I64", "U8"); throws naming it otherwise.
size_t element_size(std::string_view dtype);

// The dtype string of a C++ element type: float, int32_t, int64_t or uint8_t.
template <typename T>
constexpr std::string_view dtype_of() {
  if constexpr (std::is_same_v<T, float>) return "F32";
  else if constexpr (std::is_same_v<T, int32_t>) return "I32";
  else if constexpr (std::is_same_v<T, int64_t>) return "I64";
  else if constexpr (std::is_same_v<T, uint8_t>) return "U8";
  else static_assert(!sizeof(T), "safetensors supports float, int32_t, int64_t and uint8_t");
}

// Product of the dimensions (1 for a 0-d scalar, shape []); throws on a negative dimension or overflow.
int64_t numel(const std::vector<int64_t>& shape);

// "[2, 3]": for messages.
std::string shape_string(const std::vector<int64_t>& shape);

// One named tensor: dtype, shape and its raw little-endian bytes (numel(shape) · element_size(dtype)).
struct Entry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;

  int64_t numel() const { return safetensors::numel(shape); }

  // The elements as T; throws naming the entry when its dtype is not dtype_of<T>().
  template <typename T>
  std::vector<T> values() const {
    if (dtype != dtype_of<T>())
      throw error("safetensors: tensor '", name, "' has dtype ", dtype, ", not ", dtype_of<T>());
    const size_t n = static_cast<size_t>(numel());
    if (data.size() != n * sizeof(T))
      throw error("safetensors: tensor '", name, "' holds ", data.size(), " bytes but shape ", shape_string(shape),
                  " of ", dtype, " needs ", n * sizeof(T));
    std::vector<T> out(n);
    if (n > 0) std::memcpy(out.data(), data.data(), n * sizeof(T));
    return out;
  }

  // An entry holding a copy of `values`; throws when their count does not match the shape.
  template <typename T>
  static Entry from(std::string name, std::vector<int64_t> shape, const std::vector<T>& values) {
    const int64_t n = safetensors::numel(shape);
    if (static_cast<int64_t>(values.size()) != n)
      throw error("safetensors: tensor '", name, "' of shape ", shape_string(shape), " needs ", n, " values, got ",
                  values.size());
    Entry e{std::move(name), std::string(dtype_of<T>()), std::move(shape), std::vector<std::byte>(n * sizeof(T))};
    if (n > 0) std::memcpy(e.data.data(), values.data(), e.data.size());
    return e;
  }
};

// A whole file: tensors in header order, and the optional "__metadata__" pairs in header order.
struct File {
  std::vector<Entry> entries;
  std::vector<std::pair<std::string, std::string>> metadata;

  const Entry* find(std::string_view name) const;  // nullptr when absent
  const Entry& at(std::string_view name) const;    // throws naming the missing tensor
};

// Largest JSON header read() accepts, and how deeply it may nest (a valid header nests 3 deep).
inline constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
inline constexpr int kMaxJsonDepth = 16;

// Reads and validates the whole file; throws raisin::Error naming `path` and the fault.
File read(const std::string& path);
// The same for the bytes of a whole file already in memory, `name` standing for its path in errors.
File parse(std::span<const uint8_t> bytes, const std::string& name);

// Validates `file` (unique names, known dtypes, data sizes matching shapes, valid UTF-8 strings), then
// writes it to path + ".tmp", fsyncs, and renames it over `path`. Entries are stored in the given
// order; the header is padded with spaces to a multiple of 8 bytes. On any failure throws naming the
// path and the system's reason, and removes the temporary file.
void write(const std::string& path, const File& file);

}  // namespace raisin::safetensors
