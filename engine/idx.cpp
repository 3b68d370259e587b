// The IDX reader (MNIST, Fashion-MNIST), from files or from bytes in memory. Data is gzip-compressed
// when it starts with the gzip magic 1f 8b, whatever its name; then it is inflated with zlib straight
// into the dataset's buffers, so the decompressed file never exists in memory as a whole (a plain file
// is streamed the same way). Every size is checked against the header before anything is allocated or
// read, and the data must end exactly where its header says (for gzip, that also verifies the CRC of
// the whole stream).
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iomanip>
#include <limits>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "engine/dataset.h"
#include "engine/error.h"

namespace raisin {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803, kLabelsMagic = 0x00000801;
// Deflate cannot compress better than about 1032:1, so a gzip file of n bytes holds at most this many
// times n bytes: a header promising more is a truncated file, found before allocating anything.
constexpr uint64_t kMaxDeflateRatio = 1032;

std::string hex32(uint32_t v) {
  std::ostringstream out;
  out << "0x" << std::hex << std::setw(8) << std::setfill('0') << v;
  return out.str();
}

uint32_t big_endian32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

// The bytes of one IDX file, plain or gzip, read front to back: from a file (a plain file is streamed,
// a gzip file is read whole and inflated) or from memory. `path` names the source in messages.
class IdxSource {
 public:
  explicit IdxSource(const std::string& path) : path_(path) {
    file_.reset(std::fopen(path.c_str(), "rb"));
    if (!file_) throw error(path, ": cannot open: ", std::strerror(errno));
    struct stat st;
    if (::fstat(::fileno(file_.get()), &st) != 0) throw error(path, ": cannot stat: ", std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw error(path, ": is a directory, not an IDX file");
    size_ = uint64_t(st.st_size);
    uint8_t magic[2] = {0, 0};
    const size_t got = std::fread(magic, 1, 2, file_.get());
    if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
      compressed_.resize(size_);
      compressed_[0] = magic[0], compressed_[1] = magic[1];
      const size_t rest = std::fread(compressed_.data() + 2, 1, size_ - 2, file_.get());
      if (std::ferror(file_.get())) throw error(path, ": read error: ", std::strerror(errno));
      compressed_.resize(2 + rest);
      file_.reset();
      start_inflate(compressed_);
    } else {
      if (std::fseek(file_.get(), 0, SEEK_SET) != 0) throw error(path, ": cannot seek: ", std::strerror(errno));
    }
  }
  IdxSource(std::span<const uint8_t> bytes, const std::string& name) : path_(name), size_(bytes.size()) {
    if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) start_inflate(bytes);
    else memory_ = bytes;
  }
  ~IdxSource() {
    if (z_open_) inflateEnd(&z_);
  }
  IdxSource(const IdxSource&) = delete;
  IdxSource& operator=(const IdxSource&) = delete;

  bool gzip() const { return gzip_; }
  const std::string& path() const { return path_; }
  uint64_t position() const { return position_; }

  // Upper bound on the (decompressed) size: the size, or what deflate could possibly expand to.
  uint64_t max_size() const { return gzip_ ? gzip_data_.size() * kMaxDeflateRatio + 64 : size_; }

  // The exact (decompressed) size when it is known without decompressing: plain data only.
  bool size_known() const { return !gzip_; }
  uint64_t size() const { return size_; }

  // Reads up to n bytes; fewer only at the end of the data.
  size_t read(uint8_t* dst, size_t n) {
    return gzip_ ? inflate_some(dst, n) : file_ ? read_plain_file(dst, n) : read_plain_memory(dst, n);
  }

  // Reads exactly n bytes of `what`; a short read is a truncated file.
  void read_exact(uint8_t* dst, size_t n, uint64_t expected_total, const std::string& what) {
    const size_t got = read(dst, n);
    if (got == n) return;
    throw error(path_, ": truncated file: expected ", expected_total, " bytes", gzip_ ? " (decompressed)" : "",
                " for ", what, ", found ", position_);
  }

  // The data must end here: trailing bytes mean the header and the file disagree.
  void expect_end(uint64_t expected_total, const std::string& what) {
    uint8_t scratch[4096];
    uint64_t extra = 0;
    while (size_t more = read(scratch, sizeof scratch)) extra += more;
    if (extra != 0)
      throw error(path_, ": ", extra, " unexpected trailing bytes", gzip_ ? " (decompressed)" : "", ": the header (",
                  what, ") accounts for ", expected_total, " bytes, the file holds ", expected_total + extra);
  }

 private:
  void start_inflate(std::span<const uint8_t> gzip_data) {
    gzip_ = true;
    gzip_data_ = gzip_data;
    std::memset(&z_, 0, sizeof z_);
    if (inflateInit2(&z_, 15 + 16) != Z_OK) throw error(path_, ": zlib inflateInit2 failed");
    z_open_ = true;
    z_.next_in = const_cast<Bytef*>(gzip_data_.data());
    z_.avail_in = uInt(std::min<uint64_t>(gzip_data_.size(), std::numeric_limits<uInt>::max()));
  }

  size_t read_plain_memory(uint8_t* dst, size_t n) {
    const size_t got = std::min<uint64_t>(n, memory_.size() - position_);
    if (got > 0) std::memcpy(dst, memory_.data() + position_, got);
    position_ += got;
    return got;
  }

  size_t read_plain_file(uint8_t* dst, size_t n) {
    size_t total = 0;
    while (total < n) {
      const size_t got = std::fread(dst + total, 1, n - total, file_.get());
      if (got == 0) {
        if (std::ferror(file_.get())) throw error(path_, ": read error: ", std::strerror(errno));
        break;
      }
      total += got;
    }
    position_ += total;
    return total;
  }

  size_t inflate_some(uint8_t* dst, size_t n) {
    size_t total = 0;
    while (total < n && !finished_) {
      const size_t chunk = std::min<size_t>(n - total, std::numeric_limits<uInt>::max());
      z_.next_out = dst + total;
      z_.avail_out = uInt(chunk);
      const int rc = inflate(&z_, Z_NO_FLUSH);
      total += chunk - z_.avail_out;
      refill();
      if (rc == Z_STREAM_END) {
        // Another gzip member may follow (concatenated .gz files); anything else is garbage.
        const size_t remaining = compressed_remaining();
        if (remaining == 0) {
          finished_ = true;
        } else if (remaining >= 2 && z_.next_in[0] == 0x1f && z_.next_in[1] == 0x8b) {
          if (inflateReset(&z_) != Z_OK) throw error(path_, ": bad gzip stream: inflateReset failed");
        } else {
          throw error(path_, ": bad gzip stream: ", remaining, " bytes of trailing garbage after the compressed data");
        }
      } else if (rc == Z_OK || rc == Z_BUF_ERROR) {
        // Output space left over means inflate wants more input: there is none when the file is cut.
        if (z_.avail_out != 0 && compressed_remaining() == 0)
          throw error(path_, ": bad gzip stream: the compressed data ends before the end of the stream "
                             "(truncated .gz file of ", gzip_data_.size(), " bytes)");
      } else {
        throw error(path_, ": bad gzip stream: ", z_.msg ? z_.msg : zError(rc), " (zlib error ", rc, ")");
      }
    }
    position_ += total;
    return total;
  }

  size_t compressed_remaining() const {
    return gzip_data_.size() - size_t(z_.next_in - gzip_data_.data());
  }
  // zlib takes at most 4 GiB of input per call.
  void refill() {
    if (z_.avail_in == 0)
      z_.avail_in = uInt(std::min<size_t>(compressed_remaining(), std::numeric_limits<uInt>::max()));
  }

  std::string path_;
  std::unique_ptr<FILE, FileCloser> file_;  // a plain file being streamed
  std::span<const uint8_t> memory_;         // plain bytes in memory
  uint64_t size_ = 0;                       // of the file or the bytes (compressed for gzip)
  uint64_t position_ = 0;
  bool gzip_ = false;
  std::vector<uint8_t> compressed_;         // a gzip file's bytes
  std::span<const uint8_t> gzip_data_;      // what is inflated: compressed_ or bytes in memory
  z_stream z_;
  bool z_open_ = false;
  bool finished_ = false;
};

// Reads the IDX header (magic and dimensions) and checks the magic.
std::vector<uint32_t> read_header(IdxSource& source, uint32_t magic, int dims, const char* kind) {
  uint8_t header[16];
  const size_t header_size = 4 + 4 * size_t(dims);
  const size_t got = source.read(header, header_size);
  if (got < 4)
    throw error(source.path(), ": truncated file: expected an IDX ", kind, " header of ", header_size,
                " bytes, found ", got, source.gzip() ? " (decompressed)" : "");
  const uint32_t found = big_endian32(header);
  if (found != magic)
    throw error(source.path(), ": bad magic: expected ", hex32(magic), " (IDX ", kind, "), found ", hex32(found),
                found == kImagesMagic  ? " (an IDX images file)"
                : found == kLabelsMagic ? " (an IDX labels file)"
                                        : "");
  if (got < header_size)
    throw error(source.path(), ": truncated file: expected an IDX ", kind, " header of ", header_size,
                " bytes, found ", got, source.gzip() ? " (decompressed)" : "");
  std::vector<uint32_t> sizes(dims);
  for (int d = 0; d < dims; ++d) sizes[d] = big_endian32(header + 4 + 4 * d);
  return sizes;
}

// Checks that `expected_total` bytes can be in the file before allocating them.
void check_fits(const IdxSource& source, uint64_t expected_total, const std::string& what) {
  if (source.size_known() && source.size() < expected_total)
    throw error(source.path(), ": truncated file: expected ", expected_total, " bytes for ", what, ", found ",
                source.size());
  if (!source.size_known() && source.max_size() < expected_total)
    throw error(source.path(), ": truncated file: expected ", expected_total, " bytes (decompressed) for ", what,
                ", but ", source.max_size() / kMaxDeflateRatio, " bytes of gzip data cannot hold that many");
}


// Images: magic, count, rows, cols, then count·rows·cols bytes.
void read_images(IdxSource& source, Dataset& data) {
  const std::string& path = source.path();
  const std::vector<uint32_t> dims = read_header(source, kImagesMagic, 3, "images");
  const uint64_t count = dims[0], rows = dims[1], cols = dims[2];
  if (count == 0) throw error(path, ": the IDX images file holds no images (count 0)");
  if (rows == 0 || cols == 0 || rows > 65536 || cols > 65536)
    throw error(path, ": wrong image size: ", rows, "x", cols, " pixels");
  if (count > (uint64_t(1) << 40) / (rows * cols))
    throw error(path, ": implausible IDX dimensions ", count, "x", rows, "x", cols, " (over 1 TiB of pixels)");
  const uint64_t pixels = count * rows * cols;
  std::ostringstream what;
  what << "16-byte header + " << count << " images of " << rows << "x" << cols;
  const uint64_t total = 16 + pixels;
  check_fits(source, total, what.str());
  data.count = int64_t(count);
  data.height = int(rows);
  data.width = int(cols);
  data.images.resize(pixels);
  source.read_exact(data.images.data(), pixels, total, what.str());
  source.expect_end(total, what.str());
}

// Labels: magic, count, then count bytes, each < classes; count must match the images'.
void read_labels(IdxSource& source, Dataset& data, const std::string& images_path) {
  const std::string& path = source.path();
  const std::vector<uint32_t> dims = read_header(source, kLabelsMagic, 1, "labels");
  const uint64_t count = dims[0];
  if (int64_t(count) != data.count)
    throw error(path, ": count mismatch: the labels file holds ", count, " labels but ", images_path, " holds ",
                data.count, " images");
  std::ostringstream what;
  what << "8-byte header + " << count << " labels";
  const uint64_t total = 8 + count;
  check_fits(source, total, what.str());
  std::vector<uint8_t> raw(count);
  source.read_exact(raw.data(), count, total, what.str());
  source.expect_end(total, what.str());
  data.labels.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    if (raw[i] >= data.classes)
      throw error(path, ": label out of range: record ", i, " has label ", int(raw[i]), ", expected 0..",
                  data.classes - 1);
    data.labels[i] = raw[i];
  }
}

Dataset empty_idx_dataset(const std::string& name, int classes) {
  if (classes < 1 || classes > 256) throw error("read_idx: classes must be in [1, 256], got ", classes);
  Dataset data;
  data.name = name;
  data.classes = classes;
  data.channels = 1;
  return data;
}

}  // namespace

Dataset read_idx(const std::string& images_path, const std::string& labels_path, int classes) {
  Dataset data = empty_idx_dataset(images_path, classes);
  {
    IdxSource images(images_path);
    read_images(images, data);
  }
  IdxSource labels(labels_path);
  read_labels(labels, data, images_path);
  return data;
}

Dataset parse_idx(std::span<const uint8_t> images, std::span<const uint8_t> labels, int classes,
                  const std::string& images_name, const std::string& labels_name) {
  Dataset data = empty_idx_dataset(images_name, classes);
  IdxSource images_source(images, images_name);
  read_images(images_source, data);
  IdxSource labels_source(labels, labels_name);
  read_labels(labels_source, data, images_name);
  return data;
}

}  // namespace raisin
