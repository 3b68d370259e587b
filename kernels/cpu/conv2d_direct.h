// Direct (no im2col) SIMD kernels for stride-1 convolutions, used by kernels/cpu/conv2d.cpp on x86-64
// CPUs with AVX-512 or AVX2+FMA (chosen at run time; the rest of the build targets baseline x86-64).
// Elsewhere detected_isa() is none and conv2d.cpp uses im2col + GEMM only.
// Internal to the CPU backend: the engine calls conv2d_forward/conv2d_backward, never these.
//
// Both kernels see one sample, and both read "wide" rows: with the input zero-padded to
// [C, Hp, Wp], output pixel (oh, ow) of a stride-1 convolution reads input (oh + i, ow + j), i.e. flat
// padded position p + i·Wp + j for p = oh·Wp + ow. Computing every p in [0, OH·Wp) therefore needs no
// bounds checks and only contiguous vector loads; the outputs with ow ≥ OW (the last Wp − OW of every
// row) are garbage, and the caller drops them.
#pragma once
#include <cstdint>

namespace raisin::cpu::conv2d_direct {

enum class Isa { none, avx2, avx512 };

// The best instruction set this CPU supports (none: the kernels must not be called).
Isa detected_isa();
// The instruction set the convolution uses: detected_isa() unless limited by set_isa_limit. Tests lower
// the limit to run the same shapes through every path.
Isa active_isa();
void set_isa_limit(Isa limit);

// Wide outputs are computed in blocks of this many floats: Pw below must be a multiple of it.
constexpr int kWideMultiple = 16;
// weight_grad_nhwc needs Cin to be a multiple of this (its vectors run along the channels).
int channel_multiple(Isa isa);

// yw[co, p] = Σ_{c, i, j} w[co, c, i, j] · xp[c·plane + p + i·Wp + j] for co < Cout, p < Pw (overwritten).
// xp holds Cin planes of `plane` floats and must hold (Cin − 1)·plane + Pw + (kh − 1)·Wp + kw − 1 finite
// floats (zeros past the planes).
void forward_wide(Isa isa, int Cin, int Cout, int kh, int kw, int64_t plane, int Wp, int64_t Pw,
                  const float* xp, const float* w, float* yw);

// xt[(h + pad_h)·Wp + w + pad_w, c] = x[c, h, w] with Wp = W + 2·pad_w, zeros in the padding: one
// sample in the channels-last layout weight_grad_nhwc reads. C % channel_multiple(isa) == 0.
void channels_last(Isa isa, int C, int H, int W, int pad_h, int pad_w, const float* x, float* xt);

// dw_part[co, i·kw + j, c] += Σ_{oh < OH, ow < OW} dy[co, oh·OW + ow] · xt[(oh·Wp + ow + i·Wp + j)·Cin + c]
// with xt the padded sample in channels-last layout [Hp·Wp, Cin]. Cin % channel_multiple(isa) == 0,
// kh·kw ≤ 64.
void weight_grad_nhwc(Isa isa, int Cin, int Cout, int kh, int kw, int OH, int OW, int Wp, const float* xt,
                      const float* dy, float* dw_part);

}  // namespace raisin::cpu::conv2d_direct
