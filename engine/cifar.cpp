// CIFAR-10 readers, from files or from bytes in memory: the binary batches (records of 1 label byte +
// 3·32·32 planar pixel bytes) and the C10J container (shared/data/cifar10-jpeg75/README.md): a shared JPEG header and per-record scan data,
// decoded with libjpeg from memory, one decompressor per OpenMP thread. libjpeg's errors and warnings
// (a warning is how it reports corrupt scan data) become a raisin::Error naming the record, never an
// exit() or a silently grey image.
#include <sys/stat.h>

// jpeglib.h needs size_t and FILE declared before it.
#include <cstddef>
#include <cstdio>

#include <jpeglib.h>


#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstring>
#include <filesystem>
#include <fstream>
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

constexpr int kSide = 32, kChannels = 3, kClasses = 10;
constexpr int64_t kPixels = int64_t(kSide) * kSide * kChannels;  // 3072
constexpr int64_t kBinaryRecord = 1 + kPixels;                    // 3073

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

File open_file(const std::string& path, uint64_t& size) {
  File file(std::fopen(path.c_str(), "rb"));
  if (!file) throw error(path, ": cannot open: ", std::strerror(errno));
  struct stat st;
  if (::fstat(::fileno(file.get()), &st) != 0) throw error(path, ": cannot stat: ", std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw error(path, ": is a directory, not a data file");
  size = uint64_t(st.st_size);
  return file;
}

// Reads exactly n bytes or throws (the file changed size under us, or an I/O error).
void read_exact(FILE* file, const std::string& path, uint8_t* dst, size_t n, uint64_t expected_total) {
  size_t total = 0;
  while (total < n) {
    const size_t got = std::fread(dst + total, 1, n - total, file);
    if (got == 0) {
      if (std::ferror(file)) throw error(path, ": read error: ", std::strerror(errno));
      throw error(path, ": truncated file: expected ", expected_total, " bytes, the read stopped ", n - total,
                  " bytes short");
    }
    total += got;
  }
}

std::string hex_bytes(const uint8_t* p, size_t n) {
  std::ostringstream out;
  out << std::hex << std::setfill('0');
  for (size_t i = 0; i < n; ++i) out << (i ? " " : "") << std::setw(2) << int(p[i]);
  return out.str();
}

uint32_t little_endian32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// Class names from batches.meta.txt beside the data file: one per line, blank lines ignored. None when
// the file is absent; an Error when it is there but does not name exactly `classes` classes.
std::vector<std::string> read_class_names(const std::string& data_path, int classes) {
  const std::filesystem::path meta = std::filesystem::path(data_path).parent_path() / "batches.meta.txt";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(meta, ec)) return {};
  std::ifstream in(meta);
  if (!in) throw error(meta.string(), ": cannot open: ", std::strerror(errno));
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    const size_t first = line.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) continue;
    const size_t last = line.find_last_not_of(" \t\r\n");
    names.push_back(line.substr(first, last - first + 1));
  }
  if (int(names.size()) != classes)
    throw error(meta.string(), ": expected ", classes, " class names (one per line), found ", names.size());
  return names;
}

// ---- libjpeg glue ----

// libjpeg reports a fatal error through error_exit and corrupt data through emit_message(-1); both
// jump back to decode_jpeg with the message, instead of exit() and a warning on stderr.
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_fail(j_common_ptr cinfo) {
  JpegError* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0) jpeg_fail(cinfo);  // a warning: corrupt or incomplete data
}

void jpeg_silent(j_common_ptr) {}

// The outcome of decoding one record.
enum class Decode { ok, corrupt, wrong_size };

// Decodes one baseline JPEG of kSide × kSide × 3 into planar R, G, B. No C++ object with a destructor
// lives in this function, so the longjmp from libjpeg skips nothing that needed cleaning up.
Decode decode_jpeg(jpeg_decompress_struct* cinfo, JpegError* err, const uint8_t* data, size_t size,
                   uint8_t* planes, int dims[3]) {
  if (setjmp(err->jump)) {
    jpeg_abort_decompress(cinfo);
    return Decode::corrupt;
  }
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  if (jpeg_read_header(cinfo, TRUE) != JPEG_HEADER_OK) {
    std::snprintf(err->message, sizeof err->message, "no image in the JPEG stream");
    jpeg_abort_decompress(cinfo);
    return Decode::corrupt;
  }
  cinfo->out_color_space = JCS_RGB;
  if (cinfo->image_width != JDIMENSION(kSide) || cinfo->image_height != JDIMENSION(kSide) ||
      cinfo->num_components != kChannels) {
    dims[0] = int(cinfo->image_width), dims[1] = int(cinfo->image_height), dims[2] = cinfo->num_components;
    jpeg_abort_decompress(cinfo);
    return Decode::wrong_size;
  }
  jpeg_start_decompress(cinfo);
  if (cinfo->output_width != JDIMENSION(kSide) || cinfo->output_height != JDIMENSION(kSide) ||
      cinfo->output_components != kChannels) {
    dims[0] = int(cinfo->output_width), dims[1] = int(cinfo->output_height), dims[2] = cinfo->output_components;
    jpeg_abort_decompress(cinfo);
    return Decode::wrong_size;
  }
  JSAMPLE row[kSide * kChannels];
  JSAMPROW rows[1] = {row};
  constexpr int plane = kSide * kSide;
  while (cinfo->output_scanline < cinfo->output_height) {
    const int y = int(cinfo->output_scanline);
    if (jpeg_read_scanlines(cinfo, rows, 1) != 1) {
      std::snprintf(err->message, sizeof err->message, "scanline %d could not be read", y);
      jpeg_abort_decompress(cinfo);
      return Decode::corrupt;
    }
    for (int x = 0; x < kSide; ++x) {
      planes[y * kSide + x] = row[kChannels * x];
      planes[plane + y * kSide + x] = row[kChannels * x + 1];
      planes[2 * plane + y * kSide + x] = row[kChannels * x + 2];
    }
  }
  jpeg_finish_decompress(cinfo);
  return Decode::ok;
}

// One libjpeg decompressor, created and destroyed with its owner.
class JpegDecoder {
 public:
  JpegDecoder() {
    cinfo_.err = jpeg_std_error(&err_.mgr);
    err_.mgr.error_exit = jpeg_fail;
    err_.mgr.emit_message = jpeg_message;
    err_.mgr.output_message = jpeg_silent;
    err_.message[0] = '\0';
    jpeg_create_decompress(&cinfo_);
  }
  ~JpegDecoder() { jpeg_destroy_decompress(&cinfo_); }
  JpegDecoder(const JpegDecoder&) = delete;
  JpegDecoder& operator=(const JpegDecoder&) = delete;

  Decode decode(const uint8_t* data, size_t size, uint8_t* planes, int dims[3]) {
    return decode_jpeg(&cinfo_, &err_, data, size, planes, dims);
  }
  const char* message() const { return err_.message; }

 private:
  jpeg_decompress_struct cinfo_;
  JpegError err_;
};

// A record that failed to decode, kept so that the lowest-numbered failure is reported.
struct Failure {
  int64_t record = std::numeric_limits<int64_t>::max();
  std::string message;
};

// The number of whole records in a batch of `size` bytes; throws unless the size is a positive multiple
// of the record size.
uint64_t binary_records(const std::string& path, uint64_t size) {
  if (size == 0) throw error(path, ": the CIFAR-10 batch file is empty");
  if (size % kBinaryRecord != 0)
    throw error(path, ": wrong record size: the file has ", size, " bytes, not a multiple of the ", kBinaryRecord,
                "-byte CIFAR-10 record (1 label byte + 3x32x32 pixel bytes); ", size / kBinaryRecord,
                " whole records and ", size % kBinaryRecord, " bytes left over (truncated file?)");
  return size / kBinaryRecord;
}

// A dataset of `count` CIFAR-10 images, allocated, to be filled.
Dataset cifar_dataset(const std::string& name, int64_t count) {
  Dataset data;
  data.name = name;
  data.count = count;
  data.channels = kChannels, data.height = kSide, data.width = kSide;
  data.classes = kClasses;
  data.images.resize(size_t(count * kPixels));
  data.labels.resize(size_t(count));
  return data;
}

// Copies n binary records into data from record `next` on; `first` numbers the first of them in its
// file, for messages.
void copy_binary_records(const std::string& path, const uint8_t* records, int64_t n, uint64_t first, Dataset& data,
                         int64_t next) {
  for (int64_t k = 0; k < n; ++k) {
    const uint8_t* record = records + k * kBinaryRecord;
    if (record[0] >= kClasses)
      throw error(path, ": label out of range: record ", first + uint64_t(k), " has label ", int(record[0]),
                  ", expected 0..", kClasses - 1);
    data.labels[size_t(next + k)] = record[0];
    std::memcpy(data.images.data() + (next + k) * kPixels, record + 1, size_t(kPixels));
  }
}

}  // namespace

Dataset read_cifar_binary(const std::vector<std::string>& paths) {
  if (paths.empty()) throw error("read_cifar_binary: no files given");
  // Sizes first, so that the images are allocated once, at their exact size.
  std::vector<uint64_t> records(paths.size());
  int64_t count = 0;
  for (size_t f = 0; f < paths.size(); ++f) {
    uint64_t size = 0;
    open_file(paths[f], size);
    records[f] = binary_records(paths[f], size);
    count += int64_t(records[f]);
  }

  Dataset data = cifar_dataset(
      paths.size() == 1 ? paths[0] : paths[0] + " (+" + std::to_string(paths.size() - 1) + " more)", count);
  constexpr int64_t kChunkRecords = 1024;
  std::vector<uint8_t> chunk(size_t(kChunkRecords * kBinaryRecord));
  int64_t next = 0;
  for (size_t f = 0; f < paths.size(); ++f) {
    uint64_t size = 0;
    File file = open_file(paths[f], size);
    if (size != records[f] * kBinaryRecord)
      throw error(paths[f], ": the file changed size while being read (", records[f] * kBinaryRecord, " bytes, now ",
                  size, ")");
    for (uint64_t r = 0; r < records[f]; r += kChunkRecords) {
      const int64_t n = int64_t(std::min<uint64_t>(kChunkRecords, records[f] - r));
      read_exact(file.get(), paths[f], chunk.data(), size_t(n * kBinaryRecord), size);
      copy_binary_records(paths[f], chunk.data(), n, r, data, next);
      next += n;
    }
  }
  data.class_names = read_class_names(paths[0], kClasses);
  return data;
}

Dataset parse_cifar_binary(std::span<const uint8_t> batch, const std::string& name) {
  const int64_t count = int64_t(binary_records(name, batch.size()));
  Dataset data = cifar_dataset(name, count);
  copy_binary_records(name, batch.data(), count, 0, data, 0);
  return data;
}

Dataset read_c10j(const std::string& path) {
  uint64_t size = 0;
  std::vector<uint8_t> bytes;
  {
    File file = open_file(path, size);
    bytes.resize(size_t(size));
    if (size > 0) read_exact(file.get(), path, bytes.data(), size_t(size), size);
  }
  Dataset data = parse_c10j(bytes, path);
  data.class_names = read_class_names(path, kClasses);
  return data;
}

Dataset parse_c10j(std::span<const uint8_t> bytes, const std::string& path) {
  const uint64_t size = bytes.size();

  // Header: "C10J", version 1, count, hlen, then hlen bytes of shared JPEG header.
  constexpr size_t kFixed = 16;
  if (size < 4)
    throw error(path, ": truncated file: expected at least ", kFixed, " bytes of C10J header, found ", size);
  if (std::memcmp(bytes.data(), "C10J", 4) != 0)
    throw error(path, ": bad magic: expected 43 31 30 4a (\"C10J\"), found ", hex_bytes(bytes.data(), 4));
  if (size < kFixed)
    throw error(path, ": truncated file: expected at least ", kFixed, " bytes of C10J header, found ", size);
  const uint32_t version = little_endian32(bytes.data() + 4);
  const uint32_t count = little_endian32(bytes.data() + 8);
  const uint32_t hlen = little_endian32(bytes.data() + 12);
  if (version != 1) throw error(path, ": unsupported C10J version ", version, " (this reader knows version 1)");
  if (count == 0) throw error(path, ": the C10J file holds no images (count 0)");
  if (uint64_t(kFixed) + hlen > size)
    throw error(path, ": truncated file: the JPEG header needs ", kFixed + uint64_t(hlen), " bytes, found ", size);
  if (hlen < 2 || bytes[kFixed] != 0xff || bytes[kFixed + 1] != 0xd8)
    throw error(path, ": the shared JPEG header does not start with the SOI marker ff d8 (found ",
                hex_bytes(bytes.data() + kFixed, std::min<size_t>(hlen, 2)), ")");
  const uint8_t* header = bytes.data() + kFixed;

  // Records: u8 label, u16 blen, blen bytes. One pass to find them, checking every bound.
  if (uint64_t(count) * 3 > size - kFixed - hlen)
    throw error(path, ": truncated file: ", count, " records need at least ", uint64_t(count) * 3,
                " bytes after the header, found ", size - kFixed - hlen);
  std::vector<uint64_t> offsets(count);
  std::vector<uint16_t> lengths(count);
  Dataset data;
  data.name = path;
  data.count = count;
  data.channels = kChannels, data.height = kSide, data.width = kSide;
  data.classes = kClasses;
  data.labels.resize(count);
  uint64_t pos = kFixed + hlen;
  for (uint32_t i = 0; i < count; ++i) {
    if (pos + 3 > size)
      throw error(path, ": truncated file: the header promises ", count, " records, the file ends in record ", i,
                  " (at byte ", pos, " of ", size, ")");
    const uint8_t label = bytes[pos];
    const uint16_t blen = uint16_t(bytes[pos + 1] | bytes[pos + 2] << 8);
    if (label >= kClasses)
      throw error(path, ": label out of range: record ", i, " has label ", int(label), ", expected 0..",
                  kClasses - 1);
    if (pos + 3 + blen > size)
      throw error(path, ": truncated file: record ", i, " of ", count, " needs ", blen, " bytes of JPEG data at byte ",
                  pos + 3, ", the file has ", size - pos - 3, " left");
    data.labels[i] = label;
    offsets[i] = pos + 3;
    lengths[i] = blen;
    pos += 3 + uint64_t(blen);
  }
  if (pos != size)
    throw error(path, ": ", size - pos, " unexpected trailing bytes after the last of ", count,
                " records (the file holds ", size, " bytes, the records end at ", pos, ")");

  // Decode: each thread joins header || body in its own buffer and decodes into the image's planes.
  data.images.resize(size_t(count) * kPixels);
  Failure first;
#pragma omp parallel
  {
    JpegDecoder decoder;
    std::vector<uint8_t> jpeg(hlen + size_t(std::numeric_limits<uint16_t>::max()));
    std::memcpy(jpeg.data(), header, hlen);
    Failure mine;
#pragma omp for schedule(dynamic, 256)
    for (int64_t i = 0; i < int64_t(count); ++i) {
      if (i > mine.record) continue;
      std::memcpy(jpeg.data() + hlen, bytes.data() + offsets[i], lengths[i]);
      int dims[3] = {0, 0, 0};
      const Decode result =
          decoder.decode(jpeg.data(), hlen + size_t(lengths[i]), data.images.data() + i * kPixels, dims);
      if (result == Decode::ok) continue;
      mine.record = i;
      std::ostringstream message;
      if (result == Decode::corrupt)
        message << "corrupt JPEG in record " << i << " of " << path << ": " << decoder.message();
      else
        message << path << ": wrong image size in record " << i << ": the JPEG is " << dims[1] << "x" << dims[0]
                << "x" << dims[2] << " (height x width x components), expected 32x32x3";
      mine.message = message.str();
    }
#pragma omp critical(raisin_c10j_failure)
    if (mine.record < first.record) first = mine;
  }
  if (first.record != std::numeric_limits<int64_t>::max()) throw Error(first.message);
  return data;
}

}  // namespace raisin
