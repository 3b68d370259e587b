// Checkpoints: a model's state (and optionally its optimizer's) in one safetensors file that PyTorch
// reads unchanged.
//
// Layout: every model.state_dict() entry under its PyTorch name ("features.0.weight",
// "layer1.0.bn1.num_batches_tracked"; f32 → F32, i32 → I32, i64 → I64 with the same shape, the batch
// norm counter 0-d), then, when an optimizer is saved, each Sgd::state() entry under
// "optimizer.<its name>" ("optimizer.momentum.features.0.weight"), when a sampler's state is saved,
// its arrays under "optimizer.sampler.<key>" (F32 or I64, 1-d) and its reals in the metadata under
// "sampler.<key>" (comma-separated, printed with 17 significant digits: exact), and string metadata in
// "__metadata__", always including "format": "raisin-checkpoint-1". Everything that is not the model
// starts with "optimizer.", the one prefix PyTorch loaders drop. So in PyTorch
//   model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("optimizer.")})
// works with strict=True (tools/torch_models.py, tools/torch_eval.py).
//
// Writing is atomic (safetensors::write: "<path>.tmp", fsync, rename): a crash mid-write leaves the
// previous checkpoint intact. Loading validates everything (names, shapes, dtypes, optimizer state)
// before copying anything, so a failed load leaves the model and optimizer untouched.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/module.h"
#include "engine/optim.h"
#include "engine/sampler.h"

namespace raisin {

namespace safetensors {
struct File;
}

inline constexpr const char* kCheckpointFormat = "raisin-checkpoint-1";
inline constexpr const char* kOptimizerPrefix = "optimizer.";
inline constexpr const char* kSamplerTensorPrefix = "optimizer.sampler.";
inline constexpr const char* kSamplerMetadataPrefix = "sampler.";

// Writes `model` (and `optimizer`'s and `sampler`'s state when non-null) with `metadata` to `path`.
// Metadata keys must be unique and must not start with "sampler."; "format" is added (a caller's
// "format" must be kCheckpointFormat, e.g. metadata passed on from read_checkpoint_metadata). Throws
// raisin::Error naming the path on failure.
void save_checkpoint(const std::string& path, const Module& model, const Sgd* optimizer,
                     const std::vector<std::pair<std::string, std::string>>& metadata,
                     const SamplerState* sampler = nullptr);

// Loads `path` into `model` (and into `optimizer`'s state when non-null) and returns the metadata.
// The file's model entries (those not starting with "optimizer.") must be exactly the model's state
// names, each with the model's shape and dtype; with an optimizer, the file must hold exactly its
// state entries too (a model-only file loads for evaluation with optimizer = nullptr; optimizer
// entries in the file are then ignored). With `sampler` non-null, it receives the file's sampler
// state (empty when the file has none; the sampler's load_state checks what it needs). Throws
// raisin::Error naming the file and every kind of mismatch (missing and unexpected names, a tensor's
// two shapes or dtypes) without changing anything.
std::vector<std::pair<std::string, std::string>> load_checkpoint(const std::string& path, Module& model,
                                                                 Sgd* optimizer, SamplerState* sampler = nullptr);

// The same for a safetensors file already read or parsed (safetensors::parse), `path` naming it in errors.
std::vector<std::pair<std::string, std::string>> load_checkpoint(const safetensors::File& file, const std::string& path,
                                                                 Module& model, Sgd* optimizer,
                                                                 SamplerState* sampler = nullptr);

// The "__metadata__" pairs of a checkpoint (after checking that the whole file is well-formed).
std::vector<std::pair<std::string, std::string>> read_checkpoint_metadata(const std::string& path);

}  // namespace raisin
