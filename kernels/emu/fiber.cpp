// Fiber stacks (a per-OS-thread pool of guarded stacks), context switches announced to AddressSanitizer
// when it is on, and stack-overflow detection through SIGSEGV on an alternate signal stack.
#include "kernels/emu/fiber.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

extern "C" void raisin_emu_fiber_start();

namespace raisin::emu {

namespace {

constexpr size_t kSlotBytes = kFiberGuardBytes + kFiberStackBytes;
constexpr size_t kStacksPerChunk = 64;
constexpr size_t kChunkBytes = kSlotBytes * kStacksPerChunk;

class StackPool {
 public:
  ~StackPool() {
    for (char* chunk : chunks_) munmap(chunk, kChunkBytes);
  }

  FiberStack acquire() {
    if (free_.empty()) map_chunk();
    const FiberStack stack = free_.back();
    free_.pop_back();
#if defined(__SANITIZE_ADDRESS__)
    // The fiber that used it last ended or was abandoned inside its frames, whose redzones stay poisoned.
    ASAN_UNPOISON_MEMORY_REGION(stack.low, size_t(stack.high - stack.low));
#endif
    return stack;
  }

  void release(FiberStack stack) { free_.push_back(stack); }

  bool in_guard(uintptr_t address) const {
    for (char* chunk : chunks_) {
      const uintptr_t begin = reinterpret_cast<uintptr_t>(chunk);
      if (address >= begin && address < begin + kChunkBytes && (address - begin) % kSlotBytes < kFiberGuardBytes)
        return true;
    }
    return false;
  }

 private:
  void map_chunk() {
    void* memory = mmap(nullptr, kChunkBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                        -1, 0);
    if (memory == MAP_FAILED) throw std::bad_alloc();
    char* chunk = static_cast<char*>(memory);
    chunks_.push_back(chunk);
    // Pushed in reverse so that the first stacks handed out are the chunk's first.
    for (size_t i = kStacksPerChunk; i-- > 0;) {
      char* slot = chunk + i * kSlotBytes;
      if (mprotect(slot, kFiberGuardBytes, PROT_NONE) != 0) throw std::bad_alloc();
      free_.push_back({slot + kFiberGuardBytes, slot + kSlotBytes});
    }
  }

  std::vector<char*> chunks_;
  std::vector<FiberStack> free_;
};

thread_local StackPool stack_pool;

// Where a guard-region fault on this OS thread jumps to; null outside run_catching_stack_overflow.
thread_local sigjmp_buf* overflow_landing = nullptr;

struct sigaction previous_segv_action;

void on_segv(int signal, siginfo_t* info, void* context) {
  if (overflow_landing != nullptr && stack_pool.in_guard(reinterpret_cast<uintptr_t>(info->si_addr)))
    siglongjmp(*overflow_landing, 1);
  // Not ours: hand the fault to whoever handled it before, or let it kill the process as usual.
  if (previous_segv_action.sa_flags & SA_SIGINFO) {
    previous_segv_action.sa_sigaction(signal, info, context);
  } else if (previous_segv_action.sa_handler != SIG_DFL && previous_segv_action.sa_handler != SIG_IGN) {
    previous_segv_action.sa_handler(signal);
  } else {
    struct sigaction fallback = {};
    fallback.sa_handler = SIG_DFL;
    sigaction(SIGSEGV, &fallback, nullptr);  // the faulting instruction runs again and dumps core
  }
}

// The handler runs on an alternate stack: the faulting fiber's own stack is exhausted.
class AlternateSignalStack {
 public:
  AlternateSignalStack() : memory_(static_cast<char*>(std::malloc(kBytes))) {
    stack_t stack = {};
    stack.ss_sp = memory_;
    stack.ss_size = kBytes;
    sigaltstack(&stack, nullptr);
  }
  ~AlternateSignalStack() {
    stack_t disable = {};
    disable.ss_flags = SS_DISABLE;
    sigaltstack(&disable, nullptr);
    std::free(memory_);
  }

 private:
  static constexpr size_t kBytes = 64 * 1024;
  char* memory_;
};

void install_segv_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action = {};
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;  // NODEFER: SIGSEGV stays unblocked after the jump
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_segv_action);
  });
  thread_local AlternateSignalStack alternate_stack;
}

}  // namespace

FiberStack acquire_stack() { return stack_pool.acquire(); }
void release_stack(FiberStack stack) { stack_pool.release(stack); }

FiberStack os_thread_stack() {
  thread_local const FiberStack stack = [] {
    pthread_attr_t attributes;
    void* low = nullptr;
    size_t bytes = 0;
    if (pthread_getattr_np(pthread_self(), &attributes) == 0) {
      pthread_attr_getstack(&attributes, &low, &bytes);
      pthread_attr_destroy(&attributes);
    }
    return FiberStack{static_cast<char*>(low), static_cast<char*>(low) + bytes};
  }();
  return stack;
}

void switch_context(void** save_sp, [[maybe_unused]] void** fake_stack, void* load_sp,
                    [[maybe_unused]] FiberStack to) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(fake_stack, to.low, size_t(to.high - to.low));
  raisin_emu_switch(save_sp, load_sp);
  __sanitizer_finish_switch_fiber(*fake_stack, nullptr, nullptr);
#else
  raisin_emu_switch(save_sp, load_sp);
#endif
}

void enter_fiber() {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

FloatingPointControl current_floating_point_control() {
  FloatingPointControl control{__builtin_ia32_stmxcsr(), 0};
  asm volatile("fnstcw %0" : "=m"(control.x87));
  return control;
}

void* fiber_initial_sp(FiberStack stack, void (*entry)(void*), void* arg, FloatingPointControl control) {
  // The frame raisin_emu_switch pops, lowest address first: MXCSR and x87 control word, r15, r14, r13 (arg),
  // r12 (entry), rbx, rbp, return address. After its `ret` the stack pointer is 16-byte aligned.
  uintptr_t top = reinterpret_cast<uintptr_t>(stack.high) & ~uintptr_t(15);
  auto* frame = reinterpret_cast<uint64_t*>(top - 16 - 8 * 8);
  frame[0] = uint64_t(control.mxcsr) | uint64_t(control.x87) << 32;
  frame[1] = 0;                                     // r15
  frame[2] = 0;                                     // r14
  frame[3] = reinterpret_cast<uint64_t>(arg);       // r13
  frame[4] = reinterpret_cast<uint64_t>(entry);     // r12
  frame[5] = 0;                                     // rbx
  frame[6] = 0;                                     // rbp
  frame[7] = reinterpret_cast<uint64_t>(&raisin_emu_fiber_start);
  return frame;
}

bool run_catching_stack_overflow(void (*body)(void*), void* arg) {
  install_segv_handler();
  sigjmp_buf landing;
  sigjmp_buf* const outer = overflow_landing;
  if (sigsetjmp(landing, 0) != 0) {
#if defined(__SANITIZE_ADDRESS__)
    // Back on this thread's stack from an abandoned fiber's: AddressSanitizer must hear of the switch too.
    const FiberStack stack = os_thread_stack();
    __sanitizer_start_switch_fiber(nullptr, stack.low, size_t(stack.high - stack.low));
    __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
    overflow_landing = outer;
    return false;
  }
  overflow_landing = &landing;
  try {
    body(arg);
  } catch (...) {
    overflow_landing = outer;
    throw;
  }
  overflow_landing = outer;
  return true;
}

}  // namespace raisin::emu
