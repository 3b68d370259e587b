// Fibers for the CUDA emulator: stacks from a per-OS-thread pool (mapped once, reused, each with a guard
// region below it so an overflow faults instead of corrupting a neighbour), a hand-written x86-64 context
// switch (switch_x86_64.S, ~20 ns), and a way to turn a fault in a guard region into an error. Under
// AddressSanitizer every switch is announced to it (switch_context) and a reused stack is unpoisoned; it would
// otherwise report the stale redzones of a stack's previous fiber and misjudge which stack is running.
#pragma once
#include <cstddef>
#include <cstdint>

extern "C" {
// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores the stack
// pointer in *save_sp and resumes the context whose stack pointer is load_sp.
void raisin_emu_switch(void** save_sp, void* load_sp);
}

namespace raisin::emu {

inline constexpr size_t kFiberStackBytes = 64 * 1024;  // usable stack of one CUDA thread
inline constexpr size_t kFiberGuardBytes = 16 * 1024;  // inaccessible region below each stack

struct FiberStack {
  char* low = nullptr;   // lowest usable byte; the guard region lies just below
  char* high = nullptr;  // one past the highest usable byte (stacks grow down from here)
};

// Takes a stack from this OS thread's pool (mapping a new chunk of stacks when none is free) and gives it
// back. Stacks are never unmapped while the thread lives, so their touched pages stay resident.
FiberStack acquire_stack();
void release_stack(FiberStack stack);

// The stack of the calling OS thread itself, where a scheduler runs between fibers.
FiberStack os_thread_stack();

// Saves the running context's stack pointer in *save_sp and resumes the context saved at load_sp, which runs
// on `to`; returns when the running context is resumed. fake_stack keeps AddressSanitizer's fake stack of the
// running context (its frames for use-after-return checks) while it is switched out; null when it is never
// resumed. Without AddressSanitizer this is raisin_emu_switch.
void switch_context(void** save_sp, void** fake_stack, void* load_sp, FiberStack to);

// The first thing a new fiber's entry function calls (the second half of the switch that started it).
void enter_fiber();

// The floating-point control state a context switch carries: SSE (MXCSR) and x87 control words.
struct FloatingPointControl {
  uint32_t mxcsr;
  uint16_t x87;
};
FloatingPointControl current_floating_point_control();

// The stack pointer that makes the first raisin_emu_switch to it call entry(arg) on `stack`, with the
// floating-point control state `control`. entry must never return: it ends by switching away for good.
void* fiber_initial_sp(FiberStack stack, void (*entry)(void*), void* arg, FloatingPointControl control);

// Calls body(arg). When code running on one of this OS thread's fiber stacks overflows into its guard
// region, the fault is caught and this returns false at once (body and its fibers are abandoned without
// unwinding); otherwise it returns true once body returns.
bool run_catching_stack_overflow(void (*body)(void*), void* arg);

}  // namespace raisin::emu
