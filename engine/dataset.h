// Datasets: images as uint8 NCHW in memory, labels as int32, read from the standard files (IDX for
// MNIST and Fashion-MNIST, the CIFAR-10 binary batches, the C10J JPEG container) or generated. Every
// malformed file is rejected with an Error naming the file and what is wrong.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace raisin {

struct Dataset {
  std::string name;  // e.g. "fashion-mnist/train"
  int64_t count = 0;
  int channels = 0, height = 0, width = 0;
  int classes = 0;
  std::vector<uint8_t> images;  // count × channels × height × width
  std::vector<int32_t> labels;  // count, each in [0, classes)
  std::vector<std::string> class_names;  // empty when the files carry none

  int64_t image_size() const { return int64_t(channels) * height * width; }
  const uint8_t* image(int64_t i) const { return images.data() + i * image_size(); }
};

// Per-channel mean and standard deviation of the pixels scaled to [0, 1] (population deviation, over
// every pixel of every image; exact integer sums). A constant channel has stddev 0.
struct Normalization {
  std::vector<float> mean, stddev;
};
Normalization channel_statistics(const Dataset& data);

struct TrainTest {
  Dataset train, test;
  Normalization normalization;  // from the training set
  std::string source;           // where the files were found, for logs and results
};

// IDX files (plain or gzip-compressed, by content not name): images magic 0x00000803 [count, rows,
// cols], labels magic 0x00000801 [count]. Labels must be < classes.
Dataset read_idx(const std::string& images_path, const std::string& labels_path, int classes = 10);
// CIFAR-10 binary batches: records of 1 label byte and 3·32·32 pixel bytes (R, G, B planes).
Dataset read_cifar_binary(const std::vector<std::string>& paths);
// The C10J container (shared/data/cifar10-jpeg75/README.md), decoded with libjpeg.
Dataset read_c10j(const std::string& path);
// Each reader's parser for the bytes of a file already in memory: the same checks and the same errors,
// with `name` standing for the file's path in them (and as the dataset's name). Only the file readers
// look for class names (batches.meta.txt beside the file).
Dataset parse_idx(std::span<const uint8_t> images, std::span<const uint8_t> labels, int classes = 10,
                  const std::string& images_name = "images", const std::string& labels_name = "labels");
Dataset parse_cifar_binary(std::span<const uint8_t> batch, const std::string& name = "cifar batch");
Dataset parse_c10j(std::span<const uint8_t> bytes, const std::string& name = "c10j");
// A learnable synthetic set for tests: each class a random prototype image plus noise. Prototypes are
// piecewise constant on a grid of at most 8x8 cells, noise is uniform in [-48, 48] per pixel (clamped),
// labels are balanced (count/classes each, ±1) and shuffled; all drawn from Philox under `seed`.
Dataset make_synthetic(int64_t count, int channels, int height, int width, int classes, uint64_t seed);

// Resolves a dataset name to its files and loads both splits:
//   mnist         → IDX files (each plain or .gz) in <data_dir> or <data_dir>/mnist when data_dir is
//                   given (and nowhere else); else $RAISIN_DATA_DIR/mnist, <repo>/.data/mnist,
//                   <repo>/../shared/data/mnist
//   fashion-mnist → the same search, then /usr/share/datasets/fashion-mnist
//                   (apt-get install dataset-fashion-mnist)
//   cifar10       → train.c10j/test.c10j (the JPEG-q75 copy) or the CIFAR binary batches, same search
//                   with folder cifar10-jpeg75
//   synthetic     → make_synthetic (no files): 10 classes of 1x28x28, 10000 train + 2000 test, seed 1,
//                   both splits sharing the class prototypes
// The first folder holding a complete set wins; a malformed file there throws (no fallback). Throws
// naming every place searched and how to get the files when none holds them, and for an unknown name.
TrainTest load_dataset(const std::string& name, const std::string& data_dir = "");
// The folders load_dataset searches for `name`, in order (none for synthetic).
std::vector<std::string> dataset_search_path(const std::string& name, const std::string& data_dir = "");
std::vector<std::string> dataset_names();

}  // namespace raisin
