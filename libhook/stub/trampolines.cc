// The stub's exported functions: one trampoline per row of exports.inc (VGPU_EXPORT_ROW).
//
// Row i's exported function is a single indirect jump through slot i
// (vgpu_stub_slots[i]), so a call keeps its arguments, its return address and
// its stack untouched and lands in whatever the slot holds: the core's
// function once the core is attached (stub.cc), before that a per-row lazy
// entry that records which slot it came from (in %r11, a scratch register no
// argument uses) and enters vgpu_stub_lazy. That saves every argument register
// (integer, vector, %al for variadic calls), calls vgpu_stub_resolve(slot) and
// jumps to the function it returns with the registers restored, exactly as if
// the program had called that function.
//
// The slots form one array, in exports.inc order, because every row appends
// its slot to the same section; vgpu_stub_public is the array of the rows'
// exported addresses built the same way. Written in assembly because nothing
// else can forward an unknown argument list without touching it.
#if defined(__x86_64__)

// clang-format off
#define VGPU_EXPORT_ROW(name) "VGPU_TRAMPOLINE " #name "\n"
asm(R"(
  .macro VGPU_TRAMPOLINE name
    .pushsection .text.vgpu_trampolines,"ax",@progbits
    .globl \name
    .type \name, @function
    .p2align 4
\name:
    .cfi_startproc
    jmp *vgpu_slot_\name(%rip)
    .cfi_endproc
    .size \name, . - \name
    .p2align 4
vgpu_lazy_\name:
    .cfi_startproc
    leaq vgpu_slot_\name(%rip), %r11
    jmp vgpu_stub_lazy
    .cfi_endproc
    .popsection
    .pushsection .data.vgpu_slots,"aw",@progbits
vgpu_slot_\name:
    .quad vgpu_lazy_\name
    .popsection
    .pushsection .data.rel.ro.vgpu_public,"aw",@progbits
    .quad \name
    .popsection
  .endm

  .pushsection .data.vgpu_slots,"aw",@progbits
  .p2align 3
  .globl vgpu_stub_slots
  .hidden vgpu_stub_slots
vgpu_stub_slots:
  .popsection
  .pushsection .data.rel.ro.vgpu_public,"aw",@progbits
  .p2align 3
  .globl vgpu_stub_public
  .hidden vgpu_stub_public
vgpu_stub_public:
  .popsection
)"
#include "exports.inc"
R"(
  .pushsection .data.vgpu_slots,"aw",@progbits
  .globl vgpu_stub_slots_end
  .hidden vgpu_stub_slots_end
vgpu_stub_slots_end:
  .popsection

  .pushsection .text.vgpu_trampolines,"ax",@progbits
  .p2align 4
  .type vgpu_stub_lazy, @function
vgpu_stub_lazy:
  .cfi_startproc
  pushq %rbp
  .cfi_def_cfa_offset 16
  .cfi_offset %rbp, -16
  movq %rsp, %rbp
  .cfi_def_cfa_register %rbp
  # Entered by jumps from a call: %rsp was 8 mod 16, the push made it 0 mod 16.
  subq $192, %rsp
  movq %rdi, 0(%rsp)
  movq %rsi, 8(%rsp)
  movq %rdx, 16(%rsp)
  movq %rcx, 24(%rsp)
  movq %r8, 32(%rsp)
  movq %r9, 40(%rsp)
  movq %rax, 48(%rsp)
  movq %r10, 56(%rsp)
  movaps %xmm0, 64(%rsp)
  movaps %xmm1, 80(%rsp)
  movaps %xmm2, 96(%rsp)
  movaps %xmm3, 112(%rsp)
  movaps %xmm4, 128(%rsp)
  movaps %xmm5, 144(%rsp)
  movaps %xmm6, 160(%rsp)
  movaps %xmm7, 176(%rsp)
  movq %r11, %rdi
  call vgpu_stub_resolve
  movq %rax, %r11
  movq 0(%rsp), %rdi
  movq 8(%rsp), %rsi
  movq 16(%rsp), %rdx
  movq 24(%rsp), %rcx
  movq 32(%rsp), %r8
  movq 40(%rsp), %r9
  movq 48(%rsp), %rax
  movq 56(%rsp), %r10
  movaps 64(%rsp), %xmm0
  movaps 80(%rsp), %xmm1
  movaps 96(%rsp), %xmm2
  movaps 112(%rsp), %xmm3
  movaps 128(%rsp), %xmm4
  movaps 144(%rsp), %xmm5
  movaps 160(%rsp), %xmm6
  movaps 176(%rsp), %xmm7
  leave
  .cfi_def_cfa %rsp, 8
  jmp *%r11
  .cfi_endproc
  .size vgpu_stub_lazy, . - vgpu_stub_lazy
  .popsection
)");
// clang-format on
#undef VGPU_EXPORT_ROW

#elif defined(__aarch64__)
// The same on AArch64, with x16/x17 (the intra-procedure-call scratch
// registers a PLT entry uses) in the roles of %r11: the trampoline loads the
// slot into x16, a lazy entry passes its slot's address in x17, and
// vgpu_stub_lazy saves x0-x7, x8 (indirect result) and q0-q7.
// (Assembles with clang --target=aarch64-linux-gnu; not yet run on AArch64.)

// clang-format off
#define VGPU_EXPORT_ROW(name) "VGPU_TRAMPOLINE " #name "\n"
asm(R"(
  .macro VGPU_TRAMPOLINE name
    .pushsection .text.vgpu_trampolines,"ax",%progbits
    .globl \name
    .type \name, %function
    .p2align 4
\name:
    .cfi_startproc
    adrp x16, vgpu_slot_\name
    ldr x16, [x16, :lo12:vgpu_slot_\name]
    br x16
    .cfi_endproc
    .size \name, . - \name
    .p2align 4
vgpu_lazy_\name:
    .cfi_startproc
    adrp x17, vgpu_slot_\name
    add x17, x17, :lo12:vgpu_slot_\name
    b vgpu_stub_lazy
    .cfi_endproc
    .popsection
    .pushsection .data.vgpu_slots,"aw",%progbits
vgpu_slot_\name:
    .8byte vgpu_lazy_\name
    .popsection
    .pushsection .data.rel.ro.vgpu_public,"aw",%progbits
    .8byte \name
    .popsection
  .endm

  .pushsection .data.vgpu_slots,"aw",%progbits
  .p2align 3
  .globl vgpu_stub_slots
  .hidden vgpu_stub_slots
vgpu_stub_slots:
  .popsection
  .pushsection .data.rel.ro.vgpu_public,"aw",%progbits
  .p2align 3
  .globl vgpu_stub_public
  .hidden vgpu_stub_public
vgpu_stub_public:
  .popsection
)"
#include "exports.inc"
R"(
  .pushsection .data.vgpu_slots,"aw",%progbits
  .globl vgpu_stub_slots_end
  .hidden vgpu_stub_slots_end
vgpu_stub_slots_end:
  .popsection

  .pushsection .text.vgpu_trampolines,"ax",%progbits
  .p2align 4
  .type vgpu_stub_lazy, %function
vgpu_stub_lazy:
  .cfi_startproc
  stp x29, x30, [sp, #-224]!
  .cfi_def_cfa_offset 224
  .cfi_offset x29, -224
  .cfi_offset x30, -216
  mov x29, sp
  stp x0, x1, [sp, #16]
  stp x2, x3, [sp, #32]
  stp x4, x5, [sp, #48]
  stp x6, x7, [sp, #64]
  str x8, [sp, #80]
  stp q0, q1, [sp, #96]
  stp q2, q3, [sp, #128]
  stp q4, q5, [sp, #160]
  stp q6, q7, [sp, #192]
  mov x0, x17
  bl vgpu_stub_resolve
  mov x16, x0
  ldp q6, q7, [sp, #192]
  ldp q4, q5, [sp, #160]
  ldp q2, q3, [sp, #128]
  ldp q0, q1, [sp, #96]
  ldr x8, [sp, #80]
  ldp x6, x7, [sp, #64]
  ldp x4, x5, [sp, #48]
  ldp x2, x3, [sp, #32]
  ldp x0, x1, [sp, #16]
  ldp x29, x30, [sp], #224
  .cfi_def_cfa_offset 0
  br x16
  .cfi_endproc
  .size vgpu_stub_lazy, . - vgpu_stub_lazy
  .popsection
)");
// clang-format on
#undef VGPU_EXPORT_ROW

#else
#error "libvgpu.so's trampolines (libhook/stub/trampolines.cc) exist for x86_64 and aarch64 only"
#endif
