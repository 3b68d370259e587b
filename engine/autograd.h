// Reverse-mode autograd over a tape. Each op, while a Tape is recording, appends a closure that
// propagates gradients from its output back to its inputs; Tape::backward runs them in reverse.
// Gradients accumulate (+=), so a value used twice (a residual connection) gathers both.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

#include "engine/memory.h"
#include "engine/tensor.h"

namespace raisin {

struct Variable {
  Tensor value;
  Tensor grad;  // same shape as value; allocated (zeroed) on first use during backward
  bool requires_grad = false;
};
using Var = std::shared_ptr<Variable>;

// A variable that does not require gradients (inputs) or, with requires_grad, a leaf that collects
// them (parameters: their grad tensor is allocated here and zeroed by the optimizer).
Var constant(Tensor value);
Var parameter(Tensor value);

class Tape {
 public:
  explicit Tape(Arena* arena = nullptr) : arena_(arena) {}

  void record(std::function<void()> backward) { entries_.push_back(std::move(backward)); }
  size_t size() const { return entries_.size(); }

  // Seeds d loss / d loss = 1 (loss must have one element), runs every recorded closure in reverse
  // order, then clears the tape.
  void backward(const Var& loss);
  void clear() { entries_.clear(); }

  // v's gradient buffer, created as zeros on first use (in the arena when the tape has one).
  Tensor& grad(const Var& v);

 private:
  Arena* arena_;
  std::vector<std::function<void()>> entries_;
};

// What a forward pass needs besides its inputs.
struct Context {
  Tape* tape = nullptr;    // null: no gradients are recorded (evaluation)
  Arena* arena = nullptr;  // where activations live; null: the caching allocator
  bool training = true;    // batch statistics in batch norm; dropout active
  uint64_t seed = 0;       // dropout's Philox key
  // The training step, an int64 in the memory of the tensors' device (so that a step captured in a CUDA
  // graph replays with the next step's value); with the call number, dropout's Philox stream. Needed
  // only by dropout in training.
  const int64_t* step = nullptr;
  uint32_t dropout_calls = 0;
  // Where a training step's changes to host-side state (batch norm's num_batches_tracked) go, so that
  // the trainer can make them again for each replay of a captured step; null: they are made at once.
  std::vector<std::function<void()>>* host_updates = nullptr;

  // A tensor on `device` for this forward pass: from the arena (which must be on that device) or, without
  // one, from the caching allocator.
  Tensor allocate(Device device, const Shape& shape, DType dtype = DType::f32) const;
  // True when the tape records and at least one input requires gradients.
  bool records(std::initializer_list<const Var*> inputs) const;
  // The number of the next dropout op of this forward pass (its Philox stream is (step << 20) + call).
  uint32_t next_dropout_call() { return dropout_calls++; }
  // Makes a change to host-side state now, or hands it to host_updates.
  void update_host(std::function<void()> update) const;
};

}  // namespace raisin
