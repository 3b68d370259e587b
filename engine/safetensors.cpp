// safetensors.cpp: the safetensors reader and writer (see safetensors.h): a minimal strict JSON parser
// for the header, validation of every entry against the data buffer, and an atomic write through a
// temporary file, fsync and rename. Only the standard library and POSIX file calls are used.
#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <limits>
#include <system_error>
#include <unordered_set>

namespace raisin::safetensors {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; raisin copies it as is");

namespace {

constexpr std::string_view kMetadataKey = "__metadata__";

std::string errno_message(int err) { return std::system_category().message(err); }

// Every error message starts "safetensors: '<path>': ".
template <typename... Parts>
Error file_error(const std::string& path, Parts&&... parts) {
  return error("safetensors: '", path, "': ", std::forward<Parts>(parts)...);
}

// ---- UTF-8 ----

// Length of the well-formed UTF-8 sequence starting at s[i] (1..4), or 0 when it is malformed
// (bad lead byte, truncated, overlong, surrogate or above U+10FFFF).
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
  else return 0;
  if (s.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t len = utf8_sequence_length(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// ---- JSON ----

// A parsed JSON value: only what a safetensors header may contain.
struct Json {
  enum class Kind { Object, Array, String, Integer };
  Kind kind = Kind::Object;
  size_t pos = 0;                 // header byte where the value starts, for messages
  std::string text;               // String
  uint64_t integer = 0;           // Integer
  std::vector<std::string> keys;  // Object: keys[i] names items[i]
  std::vector<Json> items;        // Object members or Array elements
};

const char* kind_name(Json::Kind kind) {
  switch (kind) {
    case Json::Kind::Object: return "an object";
    case Json::Kind::Array: return "an array";
    case Json::Kind::String: return "a string";
    case Json::Kind::Integer: return "an integer";
  }
  return "a value";
}

std::string quoted_char(unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  if (c >= 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
  return std::string("byte 0x") + kHex[c >> 4] + kHex[c & 15];
}

// Recursive-descent parser for the JSON subset of safetensors headers: objects (no duplicate keys),
// arrays, strings (with all JSON escapes, valid UTF-8) and non-negative integers.
class Parser {
 public:
  Parser(std::string_view text, const std::string& path) : text_(text), path_(path) {}

  Json parse_document() {
    skip_whitespace();
    if (at_end() || peek() != '{') fail("the header must be a JSON object starting with '{'");
    Json root = parse_value(1);
    skip_whitespace();
    if (!at_end()) fail("unexpected ", quoted_char(peek()), " after the end of the header object");
    return root;
  }

 private:
  template <typename... Parts>
  [[noreturn]] void fail(Parts&&... parts) const {
    throw file_error(path_, "bad JSON at byte ", pos_, " of the header (file offset ", pos_ + 8,
                     "): ", std::forward<Parts>(parts)...);
  }

  bool at_end() const { return pos_ >= text_.size(); }
  unsigned char peek() const { return static_cast<unsigned char>(text_[pos_]); }

  void skip_whitespace() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }

  void expect(char c, const char* context) {
    skip_whitespace();
    if (at_end()) fail("unexpected end of header, expected '", c, "' ", context);
    if (peek() != static_cast<unsigned char>(c)) fail("expected '", c, "' ", context, ", found ", quoted_char(peek()));
    ++pos_;
  }

  Json parse_value(int depth) {
    skip_whitespace();
    if (at_end()) fail("unexpected end of header, expected a value");
    if (depth > kMaxJsonDepth) fail("nested deeper than ", kMaxJsonDepth, " levels");
    const unsigned char c = peek();
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') {
      Json v;
      v.kind = Json::Kind::String;
      v.pos = pos_;
      v.text = parse_string();
      return v;
    }
    if (c >= '0' && c <= '9') return parse_integer();
    if (c == '-') fail("negative numbers are not allowed");
    if (c == 't' || c == 'f' || c == 'n') fail("true, false and null are not allowed in a safetensors header");
    fail("unexpected ", quoted_char(c), ", expected a value");
  }

  Json parse_object(int depth) {
    Json v;
    v.kind = Json::Kind::Object;
    v.pos = pos_;
    ++pos_;  // '{'
    std::unordered_set<std::string> seen;
    skip_whitespace();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return v;
    }
    for (;;) {
      skip_whitespace();
      if (at_end()) fail("unexpected end of header inside an object");
      if (peek() != '"') fail("expected a string key, found ", quoted_char(peek()));
      const size_t key_pos = pos_;
      std::string key = parse_string();
      if (!seen.insert(key).second) {
        pos_ = key_pos;
        fail("duplicate key \"", key, "\"");
      }
      expect(':', "after an object key");
      v.items.push_back(parse_value(depth + 1));
      v.keys.push_back(std::move(key));
      skip_whitespace();
      if (at_end()) fail("unexpected end of header inside an object");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return v;
      }
      fail("expected ',' or '}' in an object, found ", quoted_char(peek()));
    }
  }

  Json parse_array(int depth) {
    Json v;
    v.kind = Json::Kind::Array;
    v.pos = pos_;
    ++pos_;  // '['
    skip_whitespace();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return v;
    }
    for (;;) {
      v.items.push_back(parse_value(depth + 1));
      skip_whitespace();
      if (at_end()) fail("unexpected end of header inside an array");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return v;
      }
      fail("expected ',' or ']' in an array, found ", quoted_char(peek()));
    }
  }

  Json parse_integer() {
    Json v;
    v.kind = Json::Kind::Integer;
    v.pos = pos_;
    if (peek() == '0' && pos_ + 1 < text_.size() && text_[pos_ + 1] >= '0' && text_[pos_ + 1] <= '9')
      fail("integers must not have leading zeros");
    uint64_t value = 0;
    while (!at_end() && peek() >= '0' && peek() <= '9') {
      const uint64_t digit = peek() - '0';
      if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) fail("integer too large");
      value = value * 10 + digit;
      ++pos_;
    }
    if (!at_end() && (peek() == '.' || peek() == 'e' || peek() == 'E'))
      fail("only non-negative integers are allowed, not fractions or exponents");
    v.integer = value;
    return v;
  }

  unsigned hex4() {
    if (text_.size() - pos_ < 4) fail("truncated \\u escape");
    unsigned value = 0;
    for (int k = 0; k < 4; ++k) {
      const unsigned char c = peek();
      unsigned digit;
      if (c >= '0' && c <= '9') digit = c - '0';
      else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      else fail("bad hex digit ", quoted_char(c), " in a \\u escape");
      value = value * 16 + digit;
      ++pos_;
    }
    return value;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (at_end()) fail("unterminated string");
      const unsigned char c = peek();
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail("unescaped control character ", quoted_char(c), " in a string");
      if (c != '\\') {
        const size_t len = utf8_sequence_length(text_, pos_);
        if (len == 0) fail("invalid UTF-8 in a string");
        out.append(text_.substr(pos_, len));
        pos_ += len;
        continue;
      }
      ++pos_;  // backslash
      if (at_end()) fail("unterminated escape in a string");
      const unsigned char e = peek();
      ++pos_;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail("unpaired low surrogate in a \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (text_.size() - pos_ < 2 || text_[pos_] != '\\' || text_[pos_ + 1] != 'u')
              fail("high surrogate in a \\u escape is not followed by a low surrogate");
            pos_ += 2;
            const uint32_t low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("high surrogate in a \\u escape is not followed by a low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          fail("unknown escape \\", static_cast<char>(e >= 0x20 && e < 0x7F ? e : '?'), " in a string");
      }
    }
  }

  std::string_view text_;
  const std::string& path_;
  size_t pos_ = 0;
};

// ---- header interpretation ----

struct TensorInfo {
  size_t index;  // into File::entries
  uint64_t begin, end;
};

uint64_t checked_size_in_bytes(const std::string& path, const std::string& name, const std::string& dtype,
                               const std::vector<int64_t>& shape) {
  uint64_t n = element_size(dtype);
  for (int64_t d : shape) {
    const auto dim = static_cast<uint64_t>(d);
    if (dim != 0 && n > std::numeric_limits<uint64_t>::max() / dim)
      throw file_error(path, "tensor '", name, "': shape ", shape_string(shape), " is too large");
    n *= dim;
  }
  return n;
}

// Fills entry.name/dtype/shape from one header member and returns its data offsets.
TensorInfo interpret_tensor(const std::string& path, const std::string& name, const Json& v, Entry& entry,
                            size_t index) {
  if (v.kind != Json::Kind::Object)
    throw file_error(path, "tensor '", name, "' must be described by an object, found ", kind_name(v.kind));
  const Json* dtype = nullptr;
  const Json* shape = nullptr;
  const Json* offsets = nullptr;
  for (size_t k = 0; k < v.keys.size(); ++k) {
    if (v.keys[k] == "dtype") dtype = &v.items[k];
    else if (v.keys[k] == "shape") shape = &v.items[k];
    else if (v.keys[k] == "data_offsets") offsets = &v.items[k];
    else throw file_error(path, "tensor '", name, "' has an unknown field \"", v.keys[k], "\"");
  }
  if (!dtype) throw file_error(path, "tensor '", name, "' has no \"dtype\"");
  if (!shape) throw file_error(path, "tensor '", name, "' has no \"shape\"");
  if (!offsets) throw file_error(path, "tensor '", name, "' has no \"data_offsets\"");

  if (dtype->kind != Json::Kind::String)
    throw file_error(path, "tensor '", name, "': \"dtype\" must be a string, found ", kind_name(dtype->kind));
  if (dtype->text != "F32" && dtype->text != "I32" && dtype->text != "I64" && dtype->text != "U8")
    throw file_error(path, "tensor '", name, "' has unsupported dtype '", dtype->text,
                     "' (raisin reads F32, I32, I64 and U8)");

  if (shape->kind != Json::Kind::Array)
    throw file_error(path, "tensor '", name, "': \"shape\" must be an array, found ", kind_name(shape->kind));
  std::vector<int64_t> dims;
  for (const Json& d : shape->items) {
    if (d.kind != Json::Kind::Integer)
      throw file_error(path, "tensor '", name, "': \"shape\" must hold integers, found ", kind_name(d.kind));
    if (d.integer > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw file_error(path, "tensor '", name, "': shape dimension ", d.integer, " is too large");
    dims.push_back(static_cast<int64_t>(d.integer));
  }

  if (offsets->kind != Json::Kind::Array || offsets->items.size() != 2 ||
      offsets->items[0].kind != Json::Kind::Integer || offsets->items[1].kind != Json::Kind::Integer)
    throw file_error(path, "tensor '", name, "': \"data_offsets\" must be an array of two integers [begin, end]");
  const uint64_t begin = offsets->items[0].integer;
  const uint64_t end = offsets->items[1].integer;
  if (begin > end)
    throw file_error(path, "tensor '", name, "': data_offsets [", begin, ", ", end, "] end before they begin");

  entry.name = name;
  entry.dtype = dtype->text;
  entry.shape = std::move(dims);
  const uint64_t bytes = checked_size_in_bytes(path, name, entry.dtype, entry.shape);
  if (end - begin != bytes)
    throw file_error(path, "tensor '", name, "': shape ", shape_string(entry.shape), " of ", entry.dtype, " needs ",
                     bytes, " bytes but data_offsets [", begin, ", ", end, "] span ", end - begin,
                     " (size mismatch)");
  return {index, begin, end};
}

// Checks that the tensors tile [0, buffer_size) exactly: every offset in range, no overlap, no gap.
void check_layout(const std::string& path, const File& file, std::vector<TensorInfo> infos, uint64_t buffer_size) {
  for (const TensorInfo& t : infos)
    if (t.end > buffer_size)
      throw file_error(path, "tensor '", file.entries[t.index].name, "': data_offsets [", t.begin, ", ", t.end,
                       "] are out of range: the data buffer holds ", buffer_size, " bytes");
  std::sort(infos.begin(), infos.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& t : infos) {
    if (t.begin < covered)
      throw file_error(path, "data_offsets of tensors '", file.entries[previous->index].name, "' and '",
                       file.entries[t.index].name, "' overlap");
    if (t.begin > covered)
      throw file_error(path, "data_offsets do not cover the data buffer: bytes [", covered, ", ", t.begin,
                       ") belong to no tensor");
    if (t.end > t.begin || !previous) previous = &t;
    covered = t.end;
  }
  if (covered != buffer_size)
    throw file_error(path, "data_offsets do not cover the data buffer: bytes [", covered, ", ", buffer_size,
                     ") belong to no tensor");
}

// ---- POSIX file helpers ----

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and returns close's errno (0 on success).
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

void read_exact(const std::string& path, int fd, uint64_t offset, void* dst, size_t n) {
  auto* out = static_cast<char*>(dst);
  size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw file_error(path, "read failed: ", errno_message(errno));
    }
    if (got == 0) throw file_error(path, "the file ended early (was it truncated while being read?)");
    done += static_cast<size_t>(got);
  }
}

void write_all(const std::string& tmp, int fd, const void* src, size_t n) {
  const auto* in = static_cast<const char*>(src);
  size_t done = 0;
  while (done < n) {
    const ssize_t put = ::write(fd, in + done, n - done);
    if (put < 0) {
      if (errno == EINTR) continue;
      throw error("safetensors: cannot write '", tmp, "': ", errno_message(errno));
    }
    done += static_cast<size_t>(put);
  }
}

// ---- header writing ----

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

std::string build_header(const std::string& path, const File& file) {
  std::string h = "{";
  bool first = true;
  if (!file.metadata.empty()) {
    std::unordered_set<std::string> keys;
    h += "\"__metadata__\":{";
    for (const auto& [key, value] : file.metadata) {
      if (!keys.insert(key).second) throw file_error(path, "cannot write: duplicate metadata key \"", key, "\"");
      if (!valid_utf8(key) || !valid_utf8(value))
        throw file_error(path, "cannot write: metadata key \"", key, "\" or its value is not valid UTF-8");
      if (keys.size() > 1) h += ',';
      append_json_string(h, key);
      h += ':';
      append_json_string(h, value);
    }
    h += '}';
    first = false;
  }
  std::unordered_set<std::string> names;
  uint64_t offset = 0;
  for (const Entry& e : file.entries) {
    if (e.name == kMetadataKey) throw file_error(path, "cannot write: \"__metadata__\" is reserved, not a tensor name");
    if (!names.insert(e.name).second) throw file_error(path, "cannot write: duplicate tensor name '", e.name, "'");
    if (!valid_utf8(e.name)) throw file_error(path, "cannot write: tensor name '", e.name, "' is not valid UTF-8");
    try {
      element_size(e.dtype);
      numel(e.shape);
    } catch (const Error& err) {
      throw file_error(path, "cannot write tensor '", e.name, "': ", err.what());
    }
    const uint64_t bytes = checked_size_in_bytes(path, e.name, e.dtype, e.shape);
    if (e.data.size() != bytes)
      throw file_error(path, "cannot write tensor '", e.name, "': shape ", shape_string(e.shape), " of ", e.dtype,
                       " needs ", bytes, " bytes but it holds ", e.data.size());
    if (!first) h += ',';
    first = false;
    append_json_string(h, e.name);
    h += ":{\"dtype\":";
    append_json_string(h, e.dtype);
    h += ",\"shape\":[";
    for (size_t k = 0; k < e.shape.size(); ++k) {
      if (k) h += ',';
      h += std::to_string(e.shape[k]);
    }
    h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  h += '}';
  while (h.size() % 8 != 0) h += ' ';
  if (h.size() > kMaxHeaderBytes)
    throw file_error(path, "cannot write: the header would be ", h.size(), " bytes, over the ", kMaxHeaderBytes,
                     "-byte limit");
  return h;
}

}  // namespace

size_t element_size(std::string_view dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "I64") return 8;
  if (dtype == "U8") return 1;
  throw error("safetensors: unsupported dtype '", dtype, "' (raisin supports F32, I32, I64 and U8)");
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw error("safetensors: shape ", shape_string(shape), " has a negative dimension");
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw error("safetensors: shape ", shape_string(shape), " has too many elements");
    n *= d;
  }
  return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) {
    if (k) s += ", ";
    s += std::to_string(shape[k]);
  }
  return s + "]";
}

const Entry* File::find(std::string_view name) const {
  for (const Entry& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

const Entry& File::at(std::string_view name) const {
  if (const Entry* e = find(name)) return *e;
  std::string known;
  for (size_t k = 0; k < entries.size() && k < 8; ++k) known += (k ? ", " : "") + entries[k].name;
  if (entries.size() > 8) known += ", ...";
  throw error("safetensors: no tensor named '", name, "' (the file has ", entries.size(), " tensors",
              entries.empty() ? "" : ": ", known, ")");
}

namespace {

// Parses a safetensors file of `file_size` bytes whose bytes read_at(offset, dst, n) copies; `path`
// names it in messages. Each tensor's data is read once, straight into its entry.
template <typename ReadAt>
File parse_file(const std::string& path, uint64_t file_size, ReadAt read_at) {
  if (file_size < 8)
    throw file_error(path, "file too short (", file_size, " bytes) to be safetensors: it needs at least the "
                     "8-byte header length");

  unsigned char prefix[8];
  read_at(0, prefix, 8);
  uint64_t header_size = 0;
  for (int k = 7; k >= 0; --k) header_size = (header_size << 8) | prefix[k];
  if (header_size > file_size - 8)
    throw file_error(path, "header length ", header_size, " is larger than the file (", file_size - 8,
                     " bytes follow the 8-byte length): truncated or not a safetensors file");
  if (header_size > kMaxHeaderBytes)
    throw file_error(path, "header length ", header_size, " exceeds the ", kMaxHeaderBytes, "-byte limit");

  std::string header(header_size, '\0');
  read_at(8, header.data(), header.size());
  const Json root = Parser(header, path).parse_document();

  File file;
  std::vector<TensorInfo> infos;
  for (size_t k = 0; k < root.keys.size(); ++k) {
    const std::string& key = root.keys[k];
    const Json& value = root.items[k];
    if (key == kMetadataKey) {
      if (value.kind != Json::Kind::Object)
        throw file_error(path, "\"__metadata__\" must be an object, found ", kind_name(value.kind));
      for (size_t m = 0; m < value.keys.size(); ++m) {
        if (value.items[m].kind != Json::Kind::String)
          throw file_error(path, "\"__metadata__\" value of \"", value.keys[m], "\" must be a string, found ",
                           kind_name(value.items[m].kind));
        file.metadata.emplace_back(value.keys[m], value.items[m].text);
      }
      continue;
    }
    file.entries.emplace_back();
    infos.push_back(interpret_tensor(path, key, value, file.entries.back(), file.entries.size() - 1));
  }

  const uint64_t data_start = 8 + header_size;
  check_layout(path, file, infos, file_size - data_start);
  for (const TensorInfo& t : infos) {
    Entry& e = file.entries[t.index];
    e.data.resize(t.end - t.begin);
    if (!e.data.empty()) read_at(data_start + t.begin, e.data.data(), e.data.size());
  }
  return file;
}

}  // namespace

File read(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw file_error(path, "cannot open: ", errno_message(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw file_error(path, "cannot stat: ", errno_message(errno));
  if (!S_ISREG(st.st_mode)) throw file_error(path, "not a regular file");
  return parse_file(path, static_cast<uint64_t>(st.st_size),
                    [&](uint64_t offset, void* dst, size_t n) { read_exact(path, fd.get(), offset, dst, n); });
}

File parse(std::span<const uint8_t> bytes, const std::string& name) {
  // parse_file reads only inside [0, bytes.size()): it checks every offset against the size first.
  return parse_file(name, bytes.size(),
                    [&](uint64_t offset, void* dst, size_t n) { std::memcpy(dst, bytes.data() + offset, n); });
}

void write(const std::string& path, const File& file) {
  const std::string header = build_header(path, file);  // validates everything before touching the disk
  unsigned char prefix[8];
  for (int k = 0; k < 8; ++k) prefix[k] = static_cast<unsigned char>(static_cast<uint64_t>(header.size()) >> (8 * k));

  const std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0)
    throw error("safetensors: cannot create '", tmp, "' to write '", path, "': ", errno_message(errno));
  try {
    write_all(tmp, fd.get(), prefix, sizeof prefix);
    write_all(tmp, fd.get(), header.data(), header.size());
    for (const Entry& e : file.entries)
      if (!e.data.empty()) write_all(tmp, fd.get(), e.data.data(), e.data.size());
    if (::fsync(fd.get()) != 0) throw error("safetensors: cannot fsync '", tmp, "': ", errno_message(errno));
    if (const int err = fd.close(); err != 0)
      throw error("safetensors: cannot close '", tmp, "': ", errno_message(err));
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      throw error("safetensors: cannot rename '", tmp, "' to '", path, "': ", errno_message(errno));
  } catch (...) {
    if (fd.get() >= 0) fd.close();
    ::unlink(tmp.c_str());
    throw;
  }

  // Make the rename itself durable. Best effort: the new file is complete and in place either way, and
  // some file systems refuse fsync on a directory.
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace raisin::safetensors
