// Backend: the kernels and memory operations of one kind of device, as a table of function pointers.
// Ops, tensors and the optimizer call through the table of their tensors' device, so the engine runs
// the same code on the CPU and on a GPU. The CPU table is always present; the CUDA table is registered
// at start-up by the raisin_engine_cuda library (engine/cuda_backend.h), so that engine/ itself and the
// CPU test binaries never link CUDA. Each kernel member takes its type from the CPU declaration
// (decltype), so a CUDA twin whose signature drifted fails to compile where the table is filled.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

#include "engine/tensor.h"
#include "kernels/cpu/kernels.h"

namespace raisin {

struct Backend {
  const char* name;

  // ---- memory: blocks of device memory, and copies between it and host memory ----
  void* (*allocate)(size_t bytes);  // cached; aligned for any element type
  void (*release)(void* data, size_t bytes);
  void (*copy_to_device)(void* device_dst, const void* host_src, size_t bytes);
  void (*copy_to_host)(void* host_dst, const void* device_src, size_t bytes);
  void (*copy_on_device)(void* device_dst, const void* device_src, size_t bytes);
  void (*zero)(void* device_data, size_t bytes);
  void (*synchronize)();  // waits for the device's queued work
  // ---- asynchronous transfers, so that a training step never waits for the host ----
  // Host memory for them (page-locked on a GPU; ordinary memory on the cpu).
  void* (*allocate_pinned)(size_t bytes);
  void (*release_pinned)(void* data, size_t bytes);
  // Queued behind the device's earlier work and not waited for: the pinned host buffer must stay
  // unchanged (to the device) or unread (to the host) until a fence taken after the copy has passed.
  // On the cpu both are plain copies.
  void (*copy_to_device_async)(void* device_dst, const void* pinned_src, size_t bytes);
  void (*copy_to_host_async)(void* pinned_dst, const void* device_src, size_t bytes);
  // fence() marks the work queued so far and returns its ticket; fence_wait(ticket) blocks until that
  // work has run. Both may be called from any thread (the PT thread waits for its records this way).
  uint64_t (*fence)();
  void (*fence_wait)(uint64_t ticket);
  // TF32 tensor-core math for GEMMs and convolutions (null: the device computes in fp32 only).
  void (*set_allow_tf32)(bool allow);
  // ---- graphs: a training step's device work recorded once and replayed (null: the device has none) ----
  // capture_graph records what body() queues on the device (nothing runs) and returns the graph, or null
  // with `why` naming the refused call or body's exception, the device then ready for body to run eagerly.
  // launch_graph queues one replay, reading and writing the buffers body used (they must stay allocated);
  // destroy_graph frees a graph, also while a replay of it is queued (kernels/cuda/graph.h).
  void* (*capture_graph)(const std::function<void()>& body, std::string& why);
  void (*launch_graph)(void* graph);
  void (*destroy_graph)(void* graph);

  // ---- kernels (kernels/signatures.inc) ----
  decltype(&cpu::fill) fill;
  decltype(&cpu::axpy) axpy;
  decltype(&cpu::linear_forward) linear_forward;
  decltype(&cpu::linear_backward) linear_backward;
  decltype(&cpu::conv2d_workspace_floats) conv2d_workspace_floats;
  decltype(&cpu::conv2d_forward) conv2d_forward;
  decltype(&cpu::conv2d_backward) conv2d_backward;
  decltype(&cpu::relu_forward) relu_forward;
  decltype(&cpu::relu_backward) relu_backward;
  decltype(&cpu::add_forward) add_forward;
  decltype(&cpu::maxpool2d_forward) maxpool2d_forward;
  decltype(&cpu::maxpool2d_backward) maxpool2d_backward;
  decltype(&cpu::avgpool2d_forward) avgpool2d_forward;
  decltype(&cpu::avgpool2d_backward) avgpool2d_backward;
  decltype(&cpu::global_avgpool_forward) global_avgpool_forward;
  decltype(&cpu::global_avgpool_backward) global_avgpool_backward;
  decltype(&cpu::batchnorm2d_forward_train) batchnorm2d_forward_train;
  decltype(&cpu::batchnorm2d_forward_infer) batchnorm2d_forward_infer;
  decltype(&cpu::batchnorm2d_backward_train) batchnorm2d_backward_train;
  decltype(&cpu::batchnorm2d_backward_infer) batchnorm2d_backward_infer;
  decltype(&cpu::dropout_forward) dropout_forward;
  decltype(&cpu::dropout_backward) dropout_backward;
  decltype(&cpu::softmax_cross_entropy_forward) softmax_cross_entropy_forward;
  decltype(&cpu::softmax_cross_entropy_backward) softmax_cross_entropy_backward;
  decltype(&cpu::gather_batch) gather_batch;
  decltype(&cpu::sgd_update) sgd_update;
  decltype(&cpu::sgd_update_multi) sgd_update_multi;
  decltype(&cpu::find_nonfinite) find_nonfinite;
  decltype(&cpu::rais_features) rais_features;
  decltype(&cpu::rais_distribution_workspace_doubles) rais_distribution_workspace_doubles;
  decltype(&cpu::rais_distribution) rais_distribution;
  decltype(&cpu::alias_workspace_doubles) alias_workspace_doubles;
  decltype(&cpu::alias_build) alias_build;
  decltype(&cpu::alias_draw) alias_draw;
  decltype(&cpu::rais_record_draws) rais_record_draws;
  decltype(&cpu::rais_observe) rais_observe;
  decltype(&cpu::gain_ratio_update) gain_ratio_update;
  decltype(&cpu::schedule_step) schedule_step;
  decltype(&cpu::step_metrics) step_metrics;
};

// The table for `device`; throws, naming the fix, when no backend for its kind is registered.
const Backend& backend(Device device);
// Whether a backend for this kind of device is registered (the CPU always is).
bool has_backend(Device::Kind kind);
// Programs built with CUDA install the function that registers the CUDA backend (it returns "" or why
// it could not); it runs the first time a GPU is asked for, so CPU runs never initialise CUDA.
void set_backend_loader(Device::Kind kind, std::string (*loader)());
// "" when a backend for `kind` is registered or its loader registers one now; else why not.
std::string ensure_backend(Device::Kind kind);
// Installs the table for a kind of device (the CUDA library calls this; the table must outlive its use);
// null removes it.
void register_backend(Device::Kind kind, const Backend* table);
// The built-in CPU table (tests build stand-in device tables from it).
const Backend& cpu_backend();

}  // namespace raisin
