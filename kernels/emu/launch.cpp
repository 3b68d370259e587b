// Kernel launches in the CUDA emulator: configuration checks, then the blocks of the grid run on two OS
// threads, each block's CUDA threads as fibers on one of them. The threads of a block take turns in index
// order; each runs until it waits (at __syncthreads, __syncwarp or a warp intrinsic) or returns, then
// switches straight to the next thread that can run. When every thread waits or has returned, the waits
// are resolved: a warp operation completes when every lane of its mask waits at it, a block barrier when
// every thread that has not returned waits at it (returned threads count as arrived, as on the GPU).
// Anything else can never complete and fails the launch: lanes or threads waiting at different places
// (divergence) or for a lane that returned (deadlock).
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kernels/emu/emu.h"
#include "kernels/emu/errors.h"
#include "kernels/emu/fiber.h"

thread_local constinit uint3 threadIdx{};
thread_local constinit uint3 blockIdx{};
thread_local constinit dim3 blockDim{};
thread_local constinit dim3 gridDim{};

namespace raisin::emu {

namespace {

constexpr size_t kMaxSharedBytes = 48 * 1024;  // dynamic shared memory a block gets without opting in

enum class State : uint8_t { not_started, ready, waiting, done };

struct SyncPoint {
  SyncKind kind = SyncKind::syncthreads;
  unsigned mask = 0;
  int lane_argument = 0;
  int width = 0;
  uint64_t value = 0;
  const char* file = "";
  unsigned line = 0;
};

struct CudaThread {
  uint3 index{};
  State state = State::not_started;
  void* sp = nullptr;
  FiberStack stack;  // low == nullptr: none held
  SyncPoint at;      // where it waits (state == waiting)
  void* fake_stack = nullptr;  // AddressSanitizer's, kept while it waits
  uint64_t result = 0;
};

// One launch, shared by the OS threads that run its blocks.
struct Grid {
  Grid(const LaunchConfig& launched, void (*run)(const void*), const void* run_argument)
      : config(&launched), body(run), argument(run_argument),
        block_count(uint64_t(launched.grid.x) * launched.grid.y * launched.grid.z),
        floating_point_control(current_floating_point_control()) {}
  const LaunchConfig* config;
  void (*body)(const void*);
  const void* argument;
  uint64_t block_count;
  FloatingPointControl floating_point_control;  // every CUDA thread starts with the launching thread's
  uint64_t next_block = 0;
  std::mutex mutex;
  std::string error;  // why the lowest-numbered failed block failed; empty while all is well
  uint64_t error_block = 0;
};

// The state of one OS thread running blocks of a grid.
struct Worker {
  Grid* grid = nullptr;
  std::vector<CudaThread> threads;  // of the block that runs
  unsigned finished = 0;          // threads of the block that returned
  CudaThread* current = nullptr;  // the thread running, or the last one that ran
  FiberStack ended_stack;         // of a fiber that ended, for whatever runs next to give back
  FloatingPointControl floating_point_control;  // the launching thread's, for every new fiber
  void* scheduler_sp = nullptr;
  void* scheduler_fake_stack = nullptr;  // AddressSanitizer's, kept while a fiber runs
  FiberStack scheduler_stack;            // the OS thread's own
  std::vector<std::max_align_t> dynamic_shared;
  uint64_t block = 0;  // linear index of the block that runs
  std::string error;   // why the block failed
};

thread_local Worker* active_worker = nullptr;

Worker& worker_for(const char* what) {
  if (active_worker == nullptr) {
    std::fprintf(stderr, "raisin CUDA emulator: %s called outside a kernel\n", what);
    std::abort();
  }
  return *active_worker;
}

std::string to_string(uint3 v) {
  char text[48];
  std::snprintf(text, sizeof text, "(%u,%u,%u)", v.x, v.y, v.z);
  return text;
}
std::string to_string(dim3 v) { return to_string(uint3{v.x, v.y, v.z}); }

std::string hex(unsigned v) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", v);
  return text;
}

const char* name_of(SyncKind kind) {
  switch (kind) {
    case SyncKind::syncthreads: return "__syncthreads()";
    case SyncKind::syncwarp: return "__syncwarp";
    case SyncKind::shfl: return "__shfl_sync";
    case SyncKind::shfl_up: return "__shfl_up_sync";
    case SyncKind::shfl_down: return "__shfl_down_sync";
    case SyncKind::shfl_xor: return "__shfl_xor_sync";
    case SyncKind::ballot: return "__ballot_sync";
    case SyncKind::any: return "__any_sync";
    case SyncKind::all: return "__all_sync";
  }
  return "?";
}

bool is_shuffle(SyncKind kind) {
  return kind == SyncKind::shfl || kind == SyncKind::shfl_up || kind == SyncKind::shfl_down || kind == SyncKind::shfl_xor;
}

std::string describe(const SyncPoint& at) {
  std::string text = name_of(at.kind);
  if (at.kind != SyncKind::syncthreads) text += "(mask " + hex(at.mask) + ")";
  return text + " at " + at.file + ":" + std::to_string(at.line);
}

bool same_site(const SyncPoint& a, const SyncPoint& b) {
  return a.line == b.line && (a.file == b.file || std::strcmp(a.file, b.file) == 0);
}

// ---- running the threads of a block ----

void thread_main(void* raw);

// Gives back the stack of a fiber that ended; called by whatever runs after it.
void release_ended_stack(Worker& worker) {
  if (worker.ended_stack.low == nullptr) return;
  release_stack(worker.ended_stack);
  worker.ended_stack = {};
}

// Saves the running context's stack pointer in *save (and its fake stack in *fake_stack, null when it never
// resumes) and runs `thread` (on a new fiber if it has not started). Fibers switch to each other directly;
// the scheduler runs only between passes.
void switch_to(Worker& worker, void** save, void** fake_stack, CudaThread& thread) {
  if (thread.state == State::not_started) {
    thread.stack = acquire_stack();
    thread.sp = fiber_initial_sp(thread.stack, thread_main, &worker, worker.floating_point_control);
  }
  thread.state = State::ready;
  threadIdx = thread.index;
  worker.current = &thread;
  switch_context(save, fake_stack, thread.sp, thread.stack);
}

// The thread after `thread` in this pass that can run now, or null when the pass is over.
CudaThread* next_runnable(Worker& worker, CudaThread* thread) {
  CudaThread* const end = worker.threads.data() + worker.threads.size();
  for (CudaThread* next = thread + 1; next < end; ++next)
    if (next->state == State::not_started || next->state == State::ready) return next;
  return nullptr;
}

// A fiber runs CUDA threads one after another while they return without waiting: when one returns and the
// next has not started, the next runs on the same fiber and stack, so a block that never synchronises
// costs one fiber start, not one per thread. Otherwise the fiber ends and hands over to the next runnable
// thread (or the scheduler), which gives its stack back.
void thread_main(void* raw) {
  enter_fiber();
  Worker& worker = *static_cast<Worker*>(raw);
  release_ended_stack(worker);
  for (;;) {
    CudaThread& thread = *worker.current;
    try {
      worker.grid->body(worker.grid->argument);
    } catch (const std::exception& e) {
      worker.error = "thread " + to_string(thread.index) + " threw " + e.what();
    } catch (...) {
      worker.error = "thread " + to_string(thread.index) + " threw an exception";
    }
    thread.state = State::done;
    ++worker.finished;
    CudaThread* const next = &thread + 1;
    if (!worker.error.empty() || next == worker.threads.data() + worker.threads.size() ||
        next->state != State::not_started)
      break;
    next->stack = thread.stack;
    thread.stack = {};
    next->state = State::ready;
    threadIdx = next->index;
    worker.current = next;
  }
  CudaThread& last = *worker.current;
  worker.ended_stack = last.stack;
  last.stack = {};
  CudaThread* const next = worker.error.empty() ? next_runnable(worker, &last) : nullptr;
  if (next != nullptr) switch_to(worker, &last.sp, nullptr, *next);
  else switch_context(&last.sp, nullptr, worker.scheduler_sp, worker.scheduler_stack);
  __builtin_unreachable();  // an ended fiber is never resumed
}

// The scheduler runs `thread`; it returns here when no thread after it in the pass can run.
void resume(Worker& worker, CudaThread& thread) {
  switch_to(worker, &worker.scheduler_sp, &worker.scheduler_fake_stack, thread);
  release_ended_stack(worker);
}

// Suspends the running CUDA thread at `at` until the scheduler resolves the wait.
uint64_t wait_at(const SyncPoint& at) {
  Worker& worker = worker_for(name_of(at.kind));
  CudaThread& thread = *worker.current;
  thread.at = at;
  thread.state = State::waiting;
  if (CudaThread* const next = next_runnable(worker, &thread)) switch_to(worker, &thread.sp, &thread.fake_stack, *next);
  else switch_context(&thread.sp, &thread.fake_stack, worker.scheduler_sp, worker.scheduler_stack);
  release_ended_stack(worker);
  return thread.result;
}

bool fail(Worker& worker, const std::string& why) {
  worker.error = why;
  return false;
}

// The lane that `lane` reads in a shuffle, as the GPU picks it (width is a power of two up to 32).
unsigned source_lane(const SyncPoint& at, unsigned lane) {
  const unsigned width = unsigned(at.width), first = lane & ~(width - 1), argument = unsigned(at.lane_argument);
  switch (at.kind) {
    case SyncKind::shfl: return first + (argument & (width - 1));
    case SyncKind::shfl_up: return lane - first >= argument ? lane - argument : lane;
    case SyncKind::shfl_down: return lane - first + argument < width ? lane + argument : lane;
    case SyncKind::shfl_xor: {
      const unsigned source = lane ^ argument;
      return source < first + width ? source : lane;  // a later group is out of reach: own value
    }
    default: return lane;
  }
}

// Completes the warp operation that thread `first` waits at, with every lane of its mask.
bool complete_warp_operation(Worker& worker, unsigned first) {
  std::vector<CudaThread>& threads = worker.threads;
  const SyncPoint at = threads[first].at;
  const unsigned warp_base = first & ~31u, own_lane = first - warp_base;
  // Messages are built only on failure: this runs once per warp operation.
  const auto who = [&] { return "thread " + to_string(threads[first].index) + " waits at " + describe(at); };
  if (!(at.mask >> own_lane & 1))
    return fail(worker, who() + ", whose mask leaves out its own lane " + std::to_string(own_lane));
  if (is_shuffle(at.kind) && (at.width < 1 || at.width > 32 || (at.width & (at.width - 1)) != 0))
    return fail(worker, who() + " with width " + std::to_string(at.width) + "; the width must be 1, 2, 4, 8, 16 or 32");

  for (unsigned lane = 0; lane < 32; ++lane) {
    if (!(at.mask >> lane & 1)) continue;
    const unsigned index = warp_base + lane;
    const auto lane_text = [&] { return ", but its lane " + std::to_string(lane); };
    if (index >= threads.size())
      return fail(worker, who() + lane_text() + " does not exist: the block has " + std::to_string(threads.size()) +
                              " threads (warp operations need complete warps: launch a multiple of 32 threads)");
    const CudaThread& other = threads[index];
    const auto other_text = [&] { return lane_text() + " (thread " + to_string(other.index) + ")"; };
    if (other.state == State::done)
      return fail(worker, "deadlock: " + who() + other_text() + " has returned and will never reach it");
    if (other.at.kind == SyncKind::syncthreads)
      return fail(worker, "deadlock: " + who() + other_text() + " waits at " + describe(other.at));
    if (other.at.kind != at.kind || other.at.mask != at.mask ||
        (at.kind != SyncKind::syncwarp && (other.at.width != at.width || !same_site(other.at, at))))
      return fail(worker, "warp divergence: " + who() + other_text() + " waits at " + describe(other.at) +
                              (other.at.width != at.width ? " with width " + std::to_string(other.at.width) : ""));
  }

  uint64_t votes = 0;
  for (unsigned lane = 0; lane < 32; ++lane)
    if ((at.mask >> lane & 1) && threads[warp_base + lane].at.value != 0) votes |= uint64_t(1) << lane;
  for (unsigned lane = 0; lane < 32; ++lane) {
    if (!(at.mask >> lane & 1)) continue;
    CudaThread& thread = threads[warp_base + lane];
    switch (at.kind) {
      case SyncKind::ballot: thread.result = votes; break;
      case SyncKind::any: thread.result = votes != 0; break;
      case SyncKind::all: thread.result = votes == at.mask; break;
      case SyncKind::syncwarp: thread.result = 0; break;
      default: {
        const unsigned source = source_lane(thread.at, lane);
        if (!(at.mask >> source & 1))
          return fail(worker, "thread " + to_string(thread.index) + " at " + describe(at) + " reads lane " +
                                  std::to_string(source) + ", which is not in the mask");
        thread.result = threads[warp_base + source].at.value;
      }
    }
    thread.state = State::ready;
  }
  return true;
}

// Called when every thread of the block waits or has returned: lets the waits complete, or explains why
// they never can.
bool resolve_waits(Worker& worker) {
  std::vector<CudaThread>& threads = worker.threads;
  bool released = false;
  for (unsigned i = 0; i < threads.size(); ++i) {
    if (threads[i].state != State::waiting || threads[i].at.kind == SyncKind::syncthreads) continue;
    if (!complete_warp_operation(worker, i)) return false;
    released = true;
  }
  if (released) return true;

  // Every thread still running waits at a __syncthreads: it completes if they all wait at the same one.
  const CudaThread* first = nullptr;
  for (CudaThread& thread : threads) {
    if (thread.state != State::waiting) continue;
    if (first == nullptr) {
      first = &thread;
    } else if (!same_site(thread.at, first->at)) {
      return fail(worker, "barrier divergence: thread " + to_string(first->index) + " waits at " + describe(first->at) +
                              " while thread " + to_string(thread.index) + " waits at " + describe(thread.at) +
                              " (all threads of a block that have not returned must reach the same __syncthreads)");
    }
    thread.state = State::ready;
  }
  return true;
}

bool run_block(Worker& worker) {
  for (CudaThread& thread : worker.threads) thread.state = State::not_started;
  worker.finished = 0;
  for (;;) {
    for (CudaThread& thread : worker.threads) {
      if (thread.state == State::not_started || thread.state == State::ready) resume(worker, thread);
      if (!worker.error.empty()) return false;  // a thread threw
    }
    if (worker.finished == worker.threads.size()) return true;
    if (!resolve_waits(worker)) return false;
  }
}

// Gives back the stacks of a failed block's threads; they are abandoned without unwinding.
void abandon_block(Worker& worker) {
  for (CudaThread& thread : worker.threads) {
    if (thread.stack.low != nullptr) release_stack(thread.stack);
    thread.stack = {};
  }
}

// Records why a block failed. Of several failing blocks the lowest-numbered one is reported, so that the
// message does not depend on how blocks were spread over OS threads.
void report(Grid& grid, uint64_t block, const std::string& why) {
  const LaunchConfig& config = *grid.config;
  std::lock_guard lock(grid.mutex);
  if (grid.error.empty() || block < grid.error_block) {
    grid.error_block = block;
    grid.error = "kernel " + std::string(config.kernel) + " (launched at " + config.file + ":" +
                 std::to_string(config.line) + " with grid " + to_string(config.grid) + " and block " +
                 to_string(config.block) + "), block " + to_string(blockIdx) + ": " + why;
  }
}

// Runs blocks of the grid on this OS thread until none is left or one fails. No object with a destructor
// may live in this frame or run_block's while a fiber runs: a stack overflow jumps out of both.
void run_blocks(void* raw) {
  Worker& worker = *static_cast<Worker*>(raw);
  Grid& grid = *worker.grid;
  const dim3 size = grid.config->grid;
  for (;;) {
    uint64_t block;
    {
      std::lock_guard lock(grid.mutex);
      if (!grid.error.empty() || grid.next_block == grid.block_count) return;
      block = grid.next_block++;
    }
    worker.block = block;
    blockIdx = uint3{unsigned(block % size.x), unsigned(block / size.x % size.y), unsigned(block / size.x / size.y)};
    if (!run_block(worker)) {
      abandon_block(worker);
      report(grid, block, worker.error);
      return;
    }
  }
}

void work_on(Grid& grid) {
  thread_local Worker worker;
  const dim3 block = grid.config->block;
  worker.grid = &grid;
  worker.error.clear();
  worker.threads.assign(size_t(block.x) * block.y * block.z, CudaThread{});
  for (unsigned i = 0; i < worker.threads.size(); ++i)
    worker.threads[i].index = uint3{i % block.x, i / block.x % block.y, i / block.x / block.y};
  worker.dynamic_shared.resize((grid.config->shared_bytes + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t));
  worker.floating_point_control = grid.floating_point_control;
  worker.scheduler_stack = os_thread_stack();
  blockDim = block;
  gridDim = grid.config->grid;
  active_worker = &worker;
  if (!run_catching_stack_overflow(run_blocks, &worker)) {
    const std::string thread = to_string(worker.current->index);
    abandon_block(worker);
    report(grid, worker.block, "thread " + thread + " overflowed its " + std::to_string(kFiberStackBytes / 1024) +
                     " KiB fiber stack (move large local arrays to shared or global memory)");
  }
  active_worker = nullptr;
}

// OS threads that run the blocks of a grid in parallel: the launching thread and one helper (blocks are
// independent, and a small pool keeps the emulator from fighting the CPU kernels' OpenMP threads).
class BlockRunners {
 public:
  static BlockRunners& instance() {
    static BlockRunners runners;
    return runners;
  }

  // Runs grid's blocks on the calling thread and every helper; returns when they are all done.
  void run(Grid& grid) {
    std::lock_guard one_grid_at_a_time(launch_mutex_);
    {
      std::lock_guard lock(mutex_);
      grid_ = &grid;
      ++generation_;
      busy_ = helpers_.size();
    }
    wake_.notify_all();
    work_on(grid);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return busy_ == 0; });
    grid_ = nullptr;
  }

  ~BlockRunners() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& helper : helpers_) helper.join();
  }

 private:
  static constexpr unsigned kThreads = 2;

  BlockRunners() {
    const unsigned threads = std::min(kThreads, std::max(1u, std::thread::hardware_concurrency()));
    for (unsigned i = 1; i < threads; ++i) helpers_.emplace_back([this] { help(); });
  }

  void help() {
    uint64_t seen = 0;
    for (;;) {
      Grid* grid;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        grid = grid_;
      }
      work_on(*grid);
      {
        std::lock_guard lock(mutex_);
        --busy_;
      }
      done_.notify_all();
    }
  }

  std::mutex launch_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  Grid* grid_ = nullptr;
  uint64_t generation_ = 0;
  size_t busy_ = 0;
  bool stop_ = false;
  std::vector<std::thread> helpers_;
};

std::string check_config(const LaunchConfig& config) {
  const dim3 g = config.grid, b = config.block;
  if (g.x == 0 || g.y == 0 || g.z == 0 || b.x == 0 || b.y == 0 || b.z == 0)
    return "every grid and block dimension must be at least 1";
  if (b.x > 1024 || b.y > 1024 || b.z > 64 || uint64_t(b.x) * b.y * b.z > 1024)
    return "a block holds at most 1024 threads (x, y at most 1024, z at most 64)";
  if (g.x > 2147483647u || g.y > 65535 || g.z > 65535) return "grid dimensions are at most (2147483647, 65535, 65535)";
  return "";
}

}  // namespace

void syncthreads(const std::source_location& where) {
  wait_at(SyncPoint{SyncKind::syncthreads, 0, 0, 0, 0, where.file_name(), where.line()});
}

uint64_t warp_exchange(SyncKind kind, unsigned mask, uint64_t value, int lane_argument, int width,
                       const std::source_location& where) {
  return wait_at(SyncPoint{kind, mask, lane_argument, width, value, where.file_name(), where.line()});
}

void* dynamic_shared_memory() { return worker_for("dynamic_shared").dynamic_shared.data(); }

std::string describe(const LaunchConfig& config) {
  return "kernel " + std::string(config.kernel) + " launched at " + config.file + ":" + std::to_string(config.line) +
         " with grid " + to_string(config.grid) + " and block " + to_string(config.block);
}

cudaError_t launch(const LaunchConfig& config, void (*body)(const void*), const void* argument) {
  if (active_worker != nullptr)
    return record_error(cudaErrorLaunchFailure,
                        describe(config) + " from inside a kernel: the emulator has no dynamic parallelism");
  if (const std::string problem = check_config(config); !problem.empty())
    return record_error(cudaErrorInvalidConfiguration, describe(config) + ": " + problem);
  if (config.shared_bytes > kMaxSharedBytes)
    return record_error(cudaErrorInvalidValue, describe(config) + " asks for " + std::to_string(config.shared_bytes) +
                                                   " bytes of dynamic shared memory; a block has at most " +
                                                   std::to_string(kMaxSharedBytes));
  Grid grid(config, body, argument);
  if (grid.block_count == 1)
    work_on(grid);
  else
    BlockRunners::instance().run(grid);
  if (!grid.error.empty()) return record_error(cudaErrorLaunchFailure, grid.error);
  return cudaSuccess;
}

}  // namespace raisin::emu
