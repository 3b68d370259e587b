// The uniform samplers: shuffled epochs (the SGD baseline) and uniform with replacement; the lookups of
// SamplerState.
#include "engine/sampler.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "engine/error.h"
#include "kernels/philox.h"

namespace raisin {

namespace {

template <typename T>
const std::vector<T>& find_entry(const std::map<std::string, std::vector<T>>& entries, const std::string& key,
                                 int64_t size, const char* kind) {
  const auto it = entries.find(key);
  if (it == entries.end())
    throw error("sampler state: no ", kind, " entry '", key,
                "' (the checkpoint was written without this sampler's state, or by another sampler)");
  if (size >= 0 && int64_t(it->second.size()) != size)
    throw error("sampler state: entry '", key, "' has ", it->second.size(), " values, expected ", size,
                " (the checkpoint was written with other settings)");
  return it->second;
}

}  // namespace

const std::vector<float>& SamplerState::float_array(const std::string& key, int64_t size) const {
  return find_entry(floats, key, size, "float");
}

const std::vector<int64_t>& SamplerState::integer_array(const std::string& key, int64_t size) const {
  return find_entry(integers, key, size, "integer");
}

const std::vector<double>& SamplerState::real_array(const std::string& key, int64_t size) const {
  return find_entry(reals, key, size, "real");
}

uint64_t Sampler::prepare_on_device(int64_t, int) {
  throw error("sampler ", name(), ": draws on the host only (the trainer uploads its draws)");
}

DeviceDraw Sampler::draw_on_device() {
  throw error("sampler ", name(), ": draws on the host only (the trainer uploads its draws)");
}

ShuffledSampler::ShuffledSampler(int64_t count, uint64_t seed) : count_(count), seed_(seed) {
  if (count < 1 || count > INT32_MAX) throw error("sampler: dataset size ", count, " out of range");
}

const std::vector<int32_t>& ShuffledSampler::permutation(int64_t epoch) {
  if (epoch != cached_epoch_) {
    cached_.resize(count_);
    std::iota(cached_.begin(), cached_.end(), 0);
    std::seed_seq seq{uint32_t(seed_), uint32_t(seed_ >> 32), uint32_t(epoch), uint32_t(epoch >> 32)};
    std::mt19937_64 rng(seq);
    std::shuffle(cached_.begin(), cached_.end(), rng);
    cached_epoch_ = epoch;
  }
  return cached_;
}

void ShuffledSampler::draw(int64_t step, int batch, std::vector<int32_t>& indices, std::vector<float>& weights) {
  indices.resize(batch);
  weights.clear();
  for (int b = 0; b < batch; ++b) {
    const int64_t position = step * batch + b;
    indices[b] = permutation(position / count_)[position % count_];
  }
}

UniformIidSampler::UniformIidSampler(int64_t count, uint64_t seed) : count_(count), seed_(seed) {
  if (count < 1 || count > INT32_MAX) throw error("sampler: dataset size ", count, " out of range");
}

void UniformIidSampler::draw(int64_t step, int batch, std::vector<int32_t>& indices, std::vector<float>& weights) {
  indices.resize(batch);
  weights.clear();
  for (int j = 0; j < batch; ++j) {
    const kernels::Philox4 r = kernels::philox_block(seed_, uint64_t(step), uint64_t(j));
    const uint64_t bits = (uint64_t(r.v[0]) << 32) | r.v[1];  // u = bits / 2^64
    indices[j] = int32_t((unsigned __int128)bits * uint64_t(count_) >> 64);
  }
}

}  // namespace raisin
