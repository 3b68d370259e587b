// `raisin eval`: test loss and accuracy of a checkpoint.
#include <cstdio>

#include "engine/checkpoint.h"
#include "engine/dataset.h"
#include "engine/trainer.h"
#include "models/models.h"
#include "tools/cli/commands.h"
#include "tools/cli/flags.h"

namespace raisin::cli {

int eval_command(int argc, char** argv) {
  Flags flags("eval");
  flags.add("checkpoint", "", "a model.safetensors or checkpoint.safetensors written by raisin train");
  flags.add("model", "", "model name (default: the one recorded in the checkpoint)");
  flags.add("data", "", "dataset (default: the one recorded in the checkpoint)");
  flags.add("data-dir", "", "folder with the dataset files (default: search the usual places)");
  flags.add("batch", "500", "evaluation batch size");
  flags.add("seed", "1", "seed for building the model before its weights are loaded");
  if (!flags.parse(argc, argv, 1)) return 0;
  const std::string path = flags.str("checkpoint");
  if (path.empty()) throw error("raisin eval: --checkpoint is required (e.g. runs/demo/model.safetensors)");

  std::string model_name = flags.str("model"), data_name = flags.str("data");
  for (const auto& [key, value] : read_checkpoint_metadata(path)) {
    if (key == "model" && model_name.empty()) model_name = value;
    if (key == "data" && data_name.empty()) data_name = value;
  }
  if (model_name.empty() || data_name.empty())
    throw error("raisin eval: ", path, " does not record its model and data; pass --model and --data");

  const TrainTest data = load_dataset(data_name, flags.str("data-dir"));
  auto model = make_model(model_name, {data.train.channels, data.train.height, data.train.width, data.train.classes},
                          uint64_t(flags.integer("seed", 0, INT64_MAX)));
  load_checkpoint(path, *model, nullptr);
  const Evaluation result = evaluate(*model, data.test, data.normalization, int(flags.integer("batch", 1, 1 << 20)));
  std::printf("%s on %s test set (%lld images): loss %.4f, accuracy %.2f%%\n", model_name.c_str(), data_name.c_str(),
              (long long)result.count, result.loss, 100 * result.accuracy);
  return 0;
}

}  // namespace raisin::cli
