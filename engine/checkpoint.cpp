// Checkpoints as safetensors: conversion between Tensors and entries, and the all-or-nothing load.
#include "engine/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>
#include <string_view>

#include "engine/safetensors.h"

namespace raisin {

namespace {

const char* file_dtype(DType d) {
  switch (d) {
    case DType::f32: return "F32";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::f64: return "F64";
  }
  return "?";
}

std::vector<int64_t> dims(const Shape& shape) {
  std::vector<int64_t> out;
  for (int d = 0; d < shape.ndim(); ++d) out.push_back(shape[d]);
  return out;
}

safetensors::Entry to_entry(const std::string& path, std::string name, const Tensor& on_device) {
  if (!on_device.defined()) throw error("checkpoint ", path, ": cannot save '", name, "': the tensor is undefined");
  const Tensor t = on_device.to(Device::cpu());  // a host copy of a GPU tensor; the tensor itself on the cpu
  safetensors::Entry e{std::move(name), file_dtype(t.dtype()), dims(t.shape()),
                       std::vector<std::byte>(size_t(t.numel()) * dtype_size(t.dtype()))};
  if (!e.data.empty()) {
    const void* src = t.dtype() == DType::f32   ? static_cast<const void*>(t.f32())
                      : t.dtype() == DType::i32 ? static_cast<const void*>(t.i32())
                      : t.dtype() == DType::i64 ? static_cast<const void*>(t.i64())
                                                : static_cast<const void*>(t.f64());
    std::memcpy(e.data.data(), src, e.data.size());
  }
  return e;
}

// "a, b, c (and 4 more)"
std::string name_list(const std::vector<std::string>& names, size_t shown = 5) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < shown; ++i) {
    if (i) out += ", ";
    out += names[i];
  }
  if (names.size() > shown) out += error(" (and ", names.size() - shown, " more)").what();
  return out;
}

std::string metadata_value(const safetensors::File& file, std::string_view key) {
  for (const auto& [k, v] : file.metadata)
    if (k == key) return v;
  return "";
}

// " (written for model lenet5)" when the file's metadata says which model it holds.
std::string file_model(const safetensors::File& file) {
  const std::string model = metadata_value(file, "model");
  return model.empty() ? std::string() : std::string(error(" (written for model ", model, ")").what());
}

// Pairs every expected tensor with its file entry, checking names (both ways), dtypes and shapes.
// `what` is "model" or "optimizer"; `prefix` is prepended to the expected names in the file.
std::vector<std::pair<Tensor, const safetensors::Entry*>> match(
    const std::string& path, const safetensors::File& file, const std::vector<std::pair<std::string, Tensor>>& expected,
    const std::vector<const safetensors::Entry*>& present, const std::string& prefix, const char* what) {
  std::set<std::string> expected_names;
  for (const auto& [name, t] : expected) expected_names.insert(prefix + name);
  std::vector<std::string> missing, unexpected;
  std::vector<std::pair<Tensor, const safetensors::Entry*>> pairs;
  for (const auto& [name, t] : expected) {
    const safetensors::Entry* e = file.find(prefix + name);
    if (e) pairs.emplace_back(t, e);
    else missing.push_back(prefix + name);
  }
  for (const safetensors::Entry* e : present)
    if (!expected_names.count(e->name)) unexpected.push_back(e->name);
  if (!missing.empty() || !unexpected.empty()) {
    std::ostringstream message;
    message << "checkpoint " << path << file_model(file) << " does not match the " << what << ":";
    if (!missing.empty())
      message << " " << missing.size() << " " << what << " tensor(s) missing from the file: " << name_list(missing)
              << (unexpected.empty() ? "" : ";");
    if (!unexpected.empty())
      message << " " << unexpected.size() << " unexpected tensor(s) in the file: " << name_list(unexpected);
    throw Error(message.str());
  }
  for (const auto& [t, e] : pairs) {
    const std::vector<int64_t> want = dims(t.shape());
    if (e->dtype != file_dtype(t.dtype()) || e->shape != want)
      throw error("checkpoint ", path, file_model(file), ": tensor '", e->name, "' is ", e->dtype, " ",
                  safetensors::shape_string(e->shape), " in the file but ", file_dtype(t.dtype()), " ",
                  safetensors::shape_string(want), " in the ", what);
  }
  return pairs;
}

// "0.10000000000000001,2": every double printed so that it reads back exactly.
std::string real_list(const std::vector<double>& values) {
  std::string out;
  char text[40];
  for (size_t i = 0; i < values.size(); ++i) {
    std::snprintf(text, sizeof text, "%.17g", values[i]);
    if (i) out += ',';
    out += text;
  }
  return out;
}

std::vector<double> parse_real_list(const std::string& path, const std::string& key, const std::string& text) {
  std::vector<double> values;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, end - start);
    char* stop = nullptr;
    const double v = std::strtod(item.c_str(), &stop);
    if (item.empty() || *stop != '\0')
      throw error("checkpoint ", path, ": metadata '", key, "' = \"", text, "\" is not a list of numbers");
    values.push_back(v);
    start = end + 1;
  }
  return values;
}

void add_sampler_state(const std::string& path, const SamplerState& state, safetensors::File& file) {
  for (const auto& [key, values] : state.floats)
    file.entries.push_back(safetensors::Entry::from(kSamplerTensorPrefix + key, {int64_t(values.size())}, values));
  for (const auto& [key, values] : state.integers)
    file.entries.push_back(safetensors::Entry::from(kSamplerTensorPrefix + key, {int64_t(values.size())}, values));
  for (const auto& [key, values] : state.reals) {
    if (state.floats.count(key) || state.integers.count(key))
      throw error("checkpoint ", path, ": sampler state '", key, "' is given twice");
    file.metadata.emplace_back(kSamplerMetadataPrefix + key, real_list(values));
  }
}

SamplerState read_sampler_state(const std::string& path, const safetensors::File& file) {
  SamplerState state;
  for (const auto& e : file.entries) {
    if (!std::string_view(e.name).starts_with(kSamplerTensorPrefix)) continue;
    const std::string key = e.name.substr(std::strlen(kSamplerTensorPrefix));
    if (e.shape.size() != 1)
      throw error("checkpoint ", path, ": sampler tensor '", e.name, "' has shape ", safetensors::shape_string(e.shape),
                  "; sampler arrays are 1-d");
    if (e.dtype == "F32") state.floats[key] = e.values<float>();
    else if (e.dtype == "I64") state.integers[key] = e.values<int64_t>();
    else throw error("checkpoint ", path, ": sampler tensor '", e.name, "' is ", e.dtype, "; expected F32 or I64");
  }
  for (const auto& [key, value] : file.metadata)
    if (std::string_view(key).starts_with(kSamplerMetadataPrefix))
      state.reals[key.substr(std::strlen(kSamplerMetadataPrefix))] = parse_real_list(path, key, value);
  return state;
}

}  // namespace

void save_checkpoint(const std::string& path, const Module& model, const Sgd* optimizer,
                     const std::vector<std::pair<std::string, std::string>>& metadata, const SamplerState* sampler) {
  safetensors::File file;
  for (const auto& [name, t] : model.state_dict()) {
    if (std::string_view(name).starts_with(kOptimizerPrefix))
      throw error("checkpoint ", path, ": model tensor '", name, "' clashes with the optimizer prefix '",
                  kOptimizerPrefix, "'");
    file.entries.push_back(to_entry(path, name, t));
  }
  if (optimizer)
    for (const auto& [name, t] : optimizer->state()) {
      if (std::string_view(kOptimizerPrefix + name).starts_with(kSamplerTensorPrefix))
        throw error("checkpoint ", path, ": optimizer state '", name, "' clashes with the sampler prefix");
      file.entries.push_back(to_entry(path, kOptimizerPrefix + name, t));
    }
  file.metadata.emplace_back("format", kCheckpointFormat);
  for (const auto& [key, value] : metadata) {
    if (key == "format") {
      if (value != kCheckpointFormat)
        throw error("checkpoint ", path, ": metadata key \"format\" is reserved for \"", kCheckpointFormat,
                    "\", got \"", value, "\"");
      continue;
    }
    if (std::string_view(key).starts_with(kSamplerMetadataPrefix))
      throw error("checkpoint ", path, ": metadata key \"", key, "\" is reserved for the sampler's state");
    file.metadata.emplace_back(key, value);
  }
  if (sampler) add_sampler_state(path, *sampler, file);
  safetensors::write(path, file);  // validates (unique names and keys), then tmp + fsync + rename
}

std::vector<std::pair<std::string, std::string>> load_checkpoint(const std::string& path, Module& model,
                                                                 Sgd* optimizer, SamplerState* sampler) {
  return load_checkpoint(safetensors::read(path), path, model, optimizer, sampler);
}

std::vector<std::pair<std::string, std::string>> load_checkpoint(const safetensors::File& file, const std::string& path,
                                                                 Module& model, Sgd* optimizer,
                                                                 SamplerState* sampler) {
  const std::string format = metadata_value(file, "format");
  if (format.starts_with("raisin-checkpoint-") && format != kCheckpointFormat)
    throw error("checkpoint ", path, " has format ", format, "; this raisin reads ", kCheckpointFormat);

  std::vector<const safetensors::Entry*> model_entries, optimizer_entries;
  for (const auto& e : file.entries) {
    if (std::string_view(e.name).starts_with(kSamplerTensorPrefix)) continue;
    (std::string_view(e.name).starts_with(kOptimizerPrefix) ? optimizer_entries : model_entries).push_back(&e);
  }

  // Validate everything first; copy only when all of it matches.
  auto pairs = match(path, file, model.state_dict(), model_entries, "", "model");
  if (optimizer) {
    const auto state = optimizer->state();
    if (!state.empty() && optimizer_entries.empty())
      throw error("checkpoint ", path, file_model(file),
                  " holds no optimizer state (it was saved model-only): load it without an optimizer to evaluate, "
                  "or resume from a checkpoint saved with one");
    auto optimizer_pairs = match(path, file, state, optimizer_entries, kOptimizerPrefix, "optimizer");
    pairs.insert(pairs.end(), optimizer_pairs.begin(), optimizer_pairs.end());
  }
  SamplerState sampler_state;
  if (sampler) sampler_state = read_sampler_state(path, file);
  for (auto& [t, e] : pairs) {
    if (e->data.empty()) continue;
    Tensor source = Tensor::wrap(const_cast<std::byte*>(e->data.data()), t.shape(), t.dtype(), Device::cpu());
    t.copy_from(source);
  }
  if (sampler) *sampler = std::move(sampler_state);
  return file.metadata;
}

std::vector<std::pair<std::string, std::string>> read_checkpoint_metadata(const std::string& path) {
  return safetensors::read(path).metadata;
}

}  // namespace raisin
