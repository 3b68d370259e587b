// Fuzz target: a checkpoint (safetensors) through raisin::safetensors::parse and raisin::load_checkpoint
// into a tiny model (conv 1->2 1x1 without bias, batch norm over 2 channels, linear 2->2), its SGD
// momentum and a sampler's state, which both RAIS samplers (over 64 examples) then load; the input is
// the file. Bad data, a mismatched model included, must
// end in raisin::Error; anything else (a crash, another exception) is a finding.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/init.h"
#include "engine/layers.h"
#include "engine/safetensors.h"
#include "rais/device_sampler.h"
#include "rais/rais_sampler.h"

namespace {

class TinyNet : public raisin::Module {
 public:
  TinyNet()
      : rng(1),
        conv(register_module("conv", std::make_unique<raisin::Conv2d>(1, 2, 1, rng, raisin::Conv2dOptions{}, false))),
        bn(register_module("bn", std::make_unique<raisin::BatchNorm2d>(2))),
        fc(register_module("fc", std::make_unique<raisin::Linear>(2, 2, rng))) {}
  raisin::Var forward(raisin::Context& ctx, const raisin::Var& x) override {
    return fc.forward(ctx, raisin::global_avgpool(ctx, bn.forward(ctx, conv.forward(ctx, x))));
  }
  raisin::Rng rng;
  raisin::Conv2d& conv;
  raisin::BatchNorm2d& bn;
  raisin::Linear& fc;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static TinyNet model;
  static raisin::Sgd sgd(model.named_parameters(), raisin::SgdOptions{});
  try {
    const raisin::safetensors::File file = raisin::safetensors::parse(std::span<const uint8_t>(data, size), "input");
    raisin::SamplerState sampler;
    raisin::load_checkpoint(file, "input", model, &sgd, &sampler);
    try {
      raisin::rais::RaisSampler(64, 1).load_state(sampler);
    } catch (const raisin::Error&) {
    }
    raisin::rais::DeviceRaisSampler(64, 1, raisin::Device::cpu()).load_state(sampler);
  } catch (const raisin::Error&) {
  }
  return 0;
}
