// raisin_emu_switch(void** save_sp, void* load_sp): saves the System V callee-saved registers (rbx, rbp,
// r12–r15), MXCSR and the x87 control word on the current stack, stores the stack pointer in *save_sp,
// then loads load_sp and restores the same set from there. A fiber's first switch lands in
// raisin_emu_fiber_start (see fiber.cpp for the initial frame it expects).
#if defined(__x86_64__) && defined(__ELF__)
        .text
        .globl  raisin_emu_switch
        .type   raisin_emu_switch, @function
        .p2align 4
raisin_emu_switch:
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)
        movq    %rsp, %rax
        movq    %rsi, %rsp
        // Loading MXCSR and the control word is slow; skip it when they are what is already in force.
        movl    (%rsp), %ecx
        cmpl    (%rax), %ecx
        jne     1f
        movzwl  4(%rsp), %ecx
        cmpw    4(%rax), %cx
        je      2f
1:      ldmxcsr (%rsp)
        fldcw   4(%rsp)
2:      addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .size   raisin_emu_switch, .-raisin_emu_switch

// First code a fiber runs: the initial frame put its entry function in r12 and its argument in r13.
// The stack pointer is 16-byte aligned here, as a call expects; the entry function never returns.
        .globl  raisin_emu_fiber_start
        .type   raisin_emu_fiber_start, @function
        .p2align 4
raisin_emu_fiber_start:
        .cfi_startproc
        .cfi_undefined rip      // the outermost frame of a fiber: backtraces stop here
        movq    %r13, %rdi
        callq   *%r12
        ud2
        .cfi_endproc
        .size   raisin_emu_fiber_start, .-raisin_emu_fiber_start

        .section .note.GNU-stack,"",@progbits
#else
#error "the CUDA emulator's context switch is written for x86-64 ELF (System V ABI)"
#endif
