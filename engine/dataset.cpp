// Datasets by name: where their files are searched for, channel statistics, and the synthetic set.
// The file readers are in idx.cpp (MNIST, Fashion-MNIST) and cifar.cpp (CIFAR-10 binary, C10J).
#include "engine/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "kernels/philox.h"

#ifndef RAISIN_SOURCE_DIR
#error "RAISIN_SOURCE_DIR (the repository root) must be defined by the build"
#endif

namespace raisin {
namespace {

namespace fs = std::filesystem;

// ---- statistics ----

void check_layout(const Dataset& data, const char* who) {
  if (data.count <= 0) throw error(who, ": dataset '", data.name, "' is empty");
  if (data.channels <= 0 || data.height <= 0 || data.width <= 0)
    throw error(who, ": dataset '", data.name, "' has image shape ", data.channels, "x", data.height, "x", data.width);
  if (int64_t(data.images.size()) != data.count * data.image_size())
    throw error(who, ": dataset '", data.name, "' holds ", data.images.size(), " pixel bytes, expected ", data.count,
                " x ", data.image_size());
}

// ---- name resolution ----

struct Spec {
  std::string name;    // "mnist"
  std::string folder;  // the folder searched for below each data root
  bool idx = false;    // IDX files (else CIFAR-10)
  std::vector<std::string> system_dirs;  // searched last, e.g. the Debian package's folder
  std::string how_to_get;
};

const std::vector<Spec>& specs() {
  static const std::vector<Spec> all = {
      {"mnist", "mnist", true, {},
       "copy the four MNIST IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
       "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; plain or gzip) into one of these folders "
       "(the project keeps them in shared/data/mnist), set RAISIN_DATA_DIR to a folder holding mnist/, "
       "or pass --data-dir DIR"},
      {"fashion-mnist", "fashion-mnist", true, {"/usr/share/datasets/fashion-mnist"},
       "install them with `apt-get install -y dataset-fashion-mnist` (files in /usr/share/datasets/fashion-mnist), "
       "or put the four IDX files (train-images-idx3-ubyte.gz, ...) in a folder and pass --data-dir DIR"},
      {"cifar10", "cifar10-jpeg75", false, {},
       "copy train.c10j and test.c10j (shared/data/cifar10-jpeg75, 18 MB) or the CIFAR-10 binary batches "
       "(data_batch_1.bin .. data_batch_5.bin, test_batch.bin) into one of these folders, set RAISIN_DATA_DIR "
       "to a folder holding cifar10-jpeg75/, or pass --data-dir DIR"},
      {"synthetic", "", false, {}, ""},
  };
  return all;
}

const Spec& find_spec(const std::string& name) {
  for (const Spec& spec : specs())
    if (spec.name == name) return spec;
  std::ostringstream known;
  for (const Spec& spec : specs()) known << (known.tellp() > 0 ? ", " : "") << spec.name;
  throw error("unknown dataset '", name, "': known datasets are ", known.str());
}

std::vector<std::string> search_dirs(const Spec& spec, const std::string& data_dir) {
  std::vector<std::string> dirs;
  if (spec.name == "synthetic") return dirs;
  if (!data_dir.empty()) {
    dirs.push_back(fs::path(data_dir).lexically_normal().string());
    dirs.push_back((fs::path(data_dir) / spec.folder).lexically_normal().string());
    return dirs;
  }
  if (const char* env = std::getenv("RAISIN_DATA_DIR"); env && *env)
    dirs.push_back((fs::path(env) / spec.folder).lexically_normal().string());
  const fs::path repo(RAISIN_SOURCE_DIR);
  dirs.push_back((repo / ".data" / spec.folder).lexically_normal().string());
  dirs.push_back((repo / ".." / "shared" / "data" / spec.folder).lexically_normal().string());
  for (const std::string& dir : spec.system_dirs) dirs.push_back(dir);
  return dirs;
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// The file `base` in dir, plain preferred over .gz; empty when neither exists.
std::string idx_file(const fs::path& dir, const std::string& base) {
  if (is_file(dir / base)) return (dir / base).string();
  if (is_file(dir / (base + ".gz"))) return (dir / (base + ".gz")).string();
  return "";
}

// Tries one folder: loads both splits when it holds every file, else says what is missing.
bool try_idx(const Spec& spec, const fs::path& dir, TrainTest& out, std::string& why) {
  const char* bases[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                          "t10k-labels-idx1-ubyte"};
  std::string files[4];
  std::string missing;
  for (int k = 0; k < 4; ++k) {
    files[k] = idx_file(dir, bases[k]);
    if (files[k].empty()) missing += std::string(missing.empty() ? "" : ", ") + bases[k] + "[.gz]";
  }
  if (!missing.empty()) {
    why = "missing " + missing;
    return false;
  }
  out.train = read_idx(files[0], files[1], 10);
  out.test = read_idx(files[2], files[3], 10);
  out.train.name = spec.name + "/train";
  out.test.name = spec.name + "/test";
  out.source = dir.string();
  return true;
}

bool try_cifar(const Spec& spec, const fs::path& dir, TrainTest& out, std::string& why) {
  if (is_file(dir / "train.c10j") && is_file(dir / "test.c10j")) {
    out.train = read_c10j((dir / "train.c10j").string());
    out.test = read_c10j((dir / "test.c10j").string());
    out.source = dir.string() + " (C10J, JPEG q75)";
  } else {
    std::vector<std::string> train;
    bool complete = is_file(dir / "test_batch.bin");
    for (int k = 1; k <= 5 && complete; ++k) {
      train.push_back((dir / ("data_batch_" + std::to_string(k) + ".bin")).string());
      complete = is_file(train.back());
    }
    if (!complete) {
      why = "no train.c10j + test.c10j, no data_batch_1..5.bin + test_batch.bin";
      return false;
    }
    out.train = read_cifar_binary(train);
    out.test = read_cifar_binary({(dir / "test_batch.bin").string()});
    out.source = dir.string() + " (CIFAR-10 binary)";
  }
  out.train.name = spec.name + "/train";
  out.test.name = spec.name + "/test";
  return true;
}

}  // namespace

Normalization channel_statistics(const Dataset& data) {
  check_layout(data, "channel_statistics");
  const int channels = data.channels;
  const int64_t plane = int64_t(data.height) * data.width;
  std::vector<uint64_t> sum(channels, 0), squares(channels, 0);
#pragma omp parallel
  {
    std::vector<uint64_t> my_sum(channels, 0), my_squares(channels, 0);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < data.count; ++i) {
      for (int c = 0; c < channels; ++c) {
        const uint8_t* p = data.image(i) + c * plane;
        // 32-bit partial sums (exact: 65536 · 255² < 2³²) vectorise well.
        for (int64_t start = 0; start < plane; start += 65536) {
          const int64_t end = std::min(plane, start + 65536);
          uint32_t s = 0, q = 0;
          for (int64_t j = start; j < end; ++j) {
            const uint32_t v = p[j];
            s += v;
            q += v * v;
          }
          my_sum[c] += s;
          my_squares[c] += q;
        }
      }
    }
#pragma omp critical(raisin_channel_statistics)
    for (int c = 0; c < channels; ++c) {
      sum[c] += my_sum[c];
      squares[c] += my_squares[c];
    }
  }
  Normalization norm;
  const double n = double(data.count) * double(plane);
  for (int c = 0; c < channels; ++c) {
    const double mean = double(sum[c]) / n / 255.0;
    const double second = double(squares[c]) / n / (255.0 * 255.0);
    norm.mean.push_back(float(mean));
    norm.stddev.push_back(float(std::sqrt(std::max(0.0, second - mean * mean))));
  }
  return norm;
}

Dataset make_synthetic(int64_t count, int channels, int height, int width, int classes, uint64_t seed) {
  if (count < 1 || channels < 1 || height < 1 || width < 1 || classes < 1 || classes > (1 << 20))
    throw error("make_synthetic: bad arguments: count ", count, ", image ", channels, "x", height, "x", width,
                ", classes ", classes, " (each must be positive)");
  Dataset data;
  data.name = "synthetic";
  data.count = count;
  data.channels = channels, data.height = height, data.width = width;
  data.classes = classes;
  const int64_t size = data.image_size();

  // Prototypes: piecewise constant on a grid of at most 8 × 8 cells, one random byte per cell (stream 1).
  const int cell_h = (height + 7) / 8, cell_w = (width + 7) / 8;
  const int grid_h = (height + cell_h - 1) / cell_h, grid_w = (width + cell_w - 1) / cell_w;
  auto random_byte = [seed](uint64_t stream, uint64_t k) {
    return uint8_t(kernels::philox_block(seed, stream, k / 16).v[(k % 16) / 4] >> (8 * (k % 4)));
  };
  std::vector<uint8_t> prototypes(size_t(classes) * size_t(size));
  for (int k = 0; k < classes; ++k)
    for (int c = 0; c < channels; ++c)
      for (int h = 0; h < height; ++h)
        for (int w = 0; w < width; ++w) {
          const uint64_t cell = ((uint64_t(k) * channels + c) * grid_h + h / cell_h) * grid_w + w / cell_w;
          prototypes[size_t(k) * size + (int64_t(c) * height + h) * width + w] = random_byte(1, cell);
        }

  // Labels: balanced (i mod classes), then shuffled by Fisher–Yates with draws from stream 2.
  data.labels.resize(size_t(count));
  for (int64_t i = 0; i < count; ++i) data.labels[i] = int32_t(i % classes);
  for (int64_t i = count - 1; i > 0; --i) {
    const kernels::Philox4 r = kernels::philox_block(seed, 2, uint64_t(i));
    const uint64_t draw = uint64_t(r.v[0]) << 32 | r.v[1];
    std::swap(data.labels[i], data.labels[draw % uint64_t(i + 1)]);
  }

  // Images: prototype + noise uniform in [−48, 48] per pixel (stream 3), clamped to [0, 255].
  constexpr int kNoise = 48;
  data.images.resize(size_t(count * size));
  const uint64_t blocks_per_image = uint64_t(size + 15) / 16;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* proto = prototypes.data() + size_t(data.labels[i]) * size;
    uint8_t* out = data.images.data() + i * size;
    for (int64_t j = 0; j < size; j += 16) {
      const kernels::Philox4 r = kernels::philox_block(seed, 3, uint64_t(i) * blocks_per_image + uint64_t(j) / 16);
      for (int64_t t = 0; t < 16 && j + t < size; ++t) {
        const int noise = int((r.v[t / 4] >> (8 * (t % 4))) & 0xff) % (2 * kNoise + 1) - kNoise;
        out[j + t] = uint8_t(std::clamp(int(proto[j + t]) + noise, 0, 255));
      }
    }
  }
  return data;
}

std::vector<std::string> dataset_search_path(const std::string& name, const std::string& data_dir) {
  return search_dirs(find_spec(name), data_dir);
}

TrainTest load_dataset(const std::string& name, const std::string& data_dir) {
  const Spec& spec = find_spec(name);
  TrainTest out;
  if (spec.name == "synthetic") {
    // One draw split in two, so that both splits share the class prototypes.
    constexpr int64_t kTrain = 10000, kTest = 2000;
    constexpr uint64_t kSeed = 1;
    Dataset all = make_synthetic(kTrain + kTest, 1, 28, 28, 10, kSeed);
    const int64_t size = all.image_size();
    out.test.name = "synthetic/test";
    out.test.count = kTest;
    out.test.channels = all.channels, out.test.height = all.height, out.test.width = all.width;
    out.test.classes = all.classes;
    out.test.images.assign(all.images.begin() + kTrain * size, all.images.end());
    out.test.labels.assign(all.labels.begin() + kTrain, all.labels.end());
    out.train = std::move(all);
    out.train.name = "synthetic/train";
    out.train.count = kTrain;
    out.train.images.resize(size_t(kTrain * size));
    out.train.labels.resize(size_t(kTrain));
    out.source = "synthetic (generated: 10 classes of 1x28x28, seed 1)";
  } else {
    std::vector<std::string> dirs = search_dirs(spec, data_dir);
    std::ostringstream searched;
    bool found = false;
    for (const std::string& dir : dirs) {
      std::string why;
      std::error_code ec;
      if (!fs::is_directory(dir, ec)) {
        why = "no such directory";
      } else if (spec.idx ? try_idx(spec, dir, out, why) : try_cifar(spec, dir, out, why)) {
        found = true;
        break;
      }
      searched << (searched.tellp() > 0 ? "; " : "") << dir << " (" << why << ")";
    }
    if (!found)
      throw error("dataset '", name, "' not found in ", searched.str(), data_dir.empty() ? "" : " (--data-dir)",
                  ". To get it: ", spec.how_to_get);  // one line, as every error
  }
  out.normalization = channel_statistics(out.train);
  return out;
}

std::vector<std::string> dataset_names() {
  std::vector<std::string> names;
  for (const Spec& spec : specs()) names.push_back(spec.name);
  return names;
}

}  // namespace raisin
