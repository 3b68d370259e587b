// CPU 2-D convolution (cross-correlation, as PyTorch's Conv2d): NCHW activations, weight
// [Cout, Cin, kh, kw], stride, zero padding, optional bias; no dilation, no groups.
//
// Threads: the samples of the batch are split over OpenMP threads; each thread works on its own
// samples with its own slot of the workspace (which stays in its core's cache) and calls OpenBLAS
// single-threaded from inside the parallel region (the OpenMP build of OpenBLAS, which the build links,
// does so by itself inside a parallel region; with the pthread build BlasSingleThread holds it to one
// thread for the duration of the call). On a 2-core machine this is 2-4x faster than OpenBLAS threading
// one GEMM per sample or one large GEMM over a chunk of samples: with M = Cout = 16 a GEMM gains little
// from more threads, and the lowering runs in parallel for free.
//
// Three ways to compute one sample, chosen by conv_path:
//
// "direct" (stride 1, padding < kernel, a CPU with AVX-512 or AVX2+FMA): SIMD kernels without im2col
// (conv2d_direct.h). The sample is copied zero-padded to xp [Cin, Hp, Wp], Hp = H + 2·pad_h,
// Wp = W + 2·pad_w, and every output is computed on "wide" rows of Wp positions, of which the first OW
// are kept:
//   forward:  yw[Cout, OH·Wp] = direct convolution of xp with w;  y_n = yw without the extra columns (+ b)
//   dx:       the same kernel on dy_n padded by k − 1 − pad with the weights rotated by 180° and
//             transposed, wf[Cin, Cout, kh, kw]; dx_n += its output without the extra columns
//   dw:       weight_grad_nhwc on xp in channels-last layout, when Cin is a multiple of the vector width;
//             otherwise the im2col GEMM below
// "gemm" (any other shape): each sample is lowered with im2col to col[K, P], K = Cin·kh·kw,
// P = OH·OW, row (c, i, j) holding padded input pixel (c, oh·stride_h + i, ow·stride_w + j) for every
// output (oh, ow); then one single-threaded sgemm per sample:
//   forward:  y_n[Cout, P]   = w[Cout, K] · col[K, P]  (+ b)
//   dw:       dwᵀ[K, Cout]  += col[K, P] · dy_n[Cout, P]ᵀ   (faster than dy_n · colᵀ at these sizes)
//   dx:       dcol[K, P]     = wᵀ · dy_n, then col2im adds every entry into the padded dx_n
// "pointwise" (1x1, stride 1, no padding): the gemm way with col = the sample itself, and
//   dx_n += wᵀ · dy_n directly.
// Every thread sums the dw of its samples into its own partial; the partials are then added to dw in
// thread order, and db is summed per channel in double, so results do not depend on timing.
//
// Workspace (conv2d_workspace_floats): one slot per thread, T = min(batch, conv_threads()), then wf.
// A slot holds a padded sample (region A), a lowered or wide matrix (region B) and the dw partial; its
// size is the largest either way could need, so the choice of way never outgrows the workspace.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/conv2d_direct.h"
#include "kernels/cpu/kernels.h"

namespace raisin::cpu {

namespace {

namespace direct = conv2d_direct;
using kernels::Conv2dShape;

// OpenMP threads used by the convolution kernels: omp_get_max_threads() at the first call, then fixed,
// so that a workspace sized by conv2d_workspace_floats always matches the kernels that use it.
int conv_threads() {
  static const int threads = std::max(1, omp_get_max_threads());
  return threads;
}

int thread_slots(const Conv2dShape& s) { return std::max(1, std::min(conv_threads(), s.batch)); }

// With the pthread build of OpenBLAS (openblas_get_parallel() == 1), holds it to one thread while the
// OpenMP threads each call it, and restores the previous count: left at two threads, every call from an
// OpenMP thread would queue work for OpenBLAS's own pool and oversubscribe the cores. The OpenMP build
// runs single-threaded inside a parallel region by itself (and its openblas_set_num_threads would
// change OpenMP's thread count), so it is left alone.
struct BlasSingleThread {
  const bool pthread_build = openblas_get_parallel() == 1;
  const int previous = pthread_build ? openblas_get_num_threads() : 1;
  BlasSingleThread() {
    if (previous != 1) openblas_set_num_threads(1);
  }
  ~BlasSingleThread() {
    if (previous != 1) openblas_set_num_threads(previous);
  }
  BlasSingleThread(const BlasSingleThread&) = delete;
  BlasSingleThread& operator=(const BlasSingleThread&) = delete;
};

int64_t round_up(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// ---- geometry ----

int64_t lowered_rows(const Conv2dShape& s) { return int64_t(s.in_channels) * s.kernel_h * s.kernel_w; }
int64_t out_plane(const Conv2dShape& s) { return int64_t(s.out_h()) * s.out_w(); }
int64_t in_plane(const Conv2dShape& s) { return int64_t(s.in_h) * s.in_w; }
int padded_h(const Conv2dShape& s) { return s.in_h + 2 * s.pad_h; }
int padded_w(const Conv2dShape& s) { return s.in_w + 2 * s.pad_w; }
int64_t padded_plane(const Conv2dShape& s) { return int64_t(padded_h(s)) * padded_w(s); }
bool has_padding(const Conv2dShape& s) { return s.pad_h > 0 || s.pad_w > 0; }

// The convolution that gives dx for stride 1: input dy [Cout, OH, OW], output [Cin, H, W], same kernel
// size, padding k − 1 − pad (OH + 2·(kh − 1 − pad_h) − kh + 1 = H).
Conv2dShape flipped_shape(const Conv2dShape& s) {
  return Conv2dShape{s.batch,    s.out_channels, s.out_h(), s.out_w(), s.in_channels, s.kernel_h, s.kernel_w,
                     1,          1,              s.kernel_h - 1 - s.pad_h, s.kernel_w - 1 - s.pad_w};
}

// Wide rows (see the top of the file): OH·Wp positions, rounded up for the SIMD blocks.
int64_t wide_positions(const Conv2dShape& s) {
  return round_up(int64_t(s.out_h()) * padded_w(s), direct::kWideMultiple);
}
// Floats of a padded sample for forward_wide: the planes, then zeros for the reads of the last wide block.
int64_t wide_input_floats(const Conv2dShape& s) {
  return s.in_channels * padded_plane(s) + wide_positions(s) - int64_t(s.out_h()) * padded_w(s) + s.kernel_w - 1;
}

enum class Path { pointwise, direct, gemm };

bool is_pointwise(const Conv2dShape& s) {
  return s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 && !has_padding(s);
}

// Shapes the direct kernels handle (given the instruction set): stride 1, and padding below the kernel
// size so that the flipped convolution for dx has a padding ≥ 0.
bool direct_fits(const Conv2dShape& s) {
  return !is_pointwise(s) && s.stride_h == 1 && s.stride_w == 1 && s.pad_h < s.kernel_h &&
         s.pad_w < s.kernel_w && s.kernel_h * s.kernel_w <= 64;
}

Path conv_path(const Conv2dShape& s) {
  if (is_pointwise(s)) return Path::pointwise;
  if (direct_fits(s) && direct::active_isa() != direct::Isa::none) return Path::direct;
  return Path::gemm;
}

// The direct path's dw kernel runs its vectors along the input channels.
bool direct_weight_grad(const Conv2dShape& s, direct::Isa isa) {
  return s.in_channels % direct::channel_multiple(isa) == 0;
}

// ---- workspace ----

// One thread's share: region A (a padded sample), region B (col, or a wide or channels-last matrix),
// the dw partial.
struct Slot {
  int64_t a = 0, b = 0, dw = 0;
  int64_t floats() const { return a + b + dw; }
};

Slot slot_sizes(const Conv2dShape& s) {
  Slot slot;
  slot.dw = int64_t(s.out_channels) * lowered_rows(s);
  if (is_pointwise(s)) return slot;
  // gemm: the padded sample (also the padded dx for col2im) and col
  if (has_padding(s)) slot.a = s.in_channels * padded_plane(s);
  slot.b = lowered_rows(s) * out_plane(s);
  if (direct_fits(s)) {
    const Conv2dShape fs = flipped_shape(s);
    slot.a = std::max({slot.a, wide_input_floats(s), wide_input_floats(fs)});
    slot.b = std::max({slot.b, s.out_channels * wide_positions(s), s.in_channels * wide_positions(fs),
                       s.in_channels * padded_plane(s)});
  }
  return slot;
}

// ---- lowering helpers ----

// One sample x [C, H, W] → xp [C, H + 2·pad_h, W + 2·pad_w], zeros around it.
void pad_sample(const Conv2dShape& s, const float* x, float* xp) {
  const int H = s.in_h, W = s.in_w, Hp = padded_h(s), Wp = padded_w(s);
  for (int c = 0; c < s.in_channels; c++) {
    const float* x_c = x + int64_t(c) * H * W;
    float* xp_c = xp + int64_t(c) * Hp * Wp;
    std::fill(xp_c, xp_c + int64_t(s.pad_h) * Wp, 0.0f);
    for (int h = 0; h < H; h++) {
      float* dst = xp_c + int64_t(h + s.pad_h) * Wp;
      std::fill(dst, dst + s.pad_w, 0.0f);
      std::copy(x_c + int64_t(h) * W, x_c + int64_t(h + 1) * W, dst + s.pad_w);
      std::fill(dst + s.pad_w + W, dst + Wp, 0.0f);
    }
    std::fill(xp_c + int64_t(H + s.pad_h) * Wp, xp_c + int64_t(Hp) * Wp, 0.0f);
  }
}

// pad_sample, then zeros up to wide_input_floats(s) for forward_wide's last block.
void pad_sample_wide(const Conv2dShape& s, const float* x, float* xp) {
  pad_sample(s, x, xp);
  const int64_t planes = s.in_channels * padded_plane(s);
  std::fill(xp + planes, xp + wide_input_floats(s), 0.0f);
}

// y [C, OH, OW] (+)= the first OW of every wide row of yw [C, wide] (+ bias[c] when bias is not null).
void unwiden(int C, int OH, int OW, int Wp, int64_t wide, const float* yw, const float* bias, bool accumulate,
             float* y) {
  for (int c = 0; c < C; c++) {
    const float b = bias != nullptr ? bias[c] : 0.0f;
    for (int oh = 0; oh < OH; oh++) {
      const float* src = yw + c * wide + int64_t(oh) * Wp;
      float* dst = y + (int64_t(c) * OH + oh) * OW;
      if (accumulate) {
        for (int ow = 0; ow < OW; ow++) dst[ow] += src[ow];
      } else {
        for (int ow = 0; ow < OW; ow++) dst[ow] = src[ow] + b;
      }
    }
  }
}

// dx [C, H, W] += the interior of dxp [C, H + 2·pad_h, W + 2·pad_w] (the adjoint of pad_sample).
void unpad_add(const Conv2dShape& s, const float* dxp, float* dx) {
  const int H = s.in_h, W = s.in_w, Hp = padded_h(s), Wp = padded_w(s);
  for (int c = 0; c < s.in_channels; c++) {
    for (int h = 0; h < H; h++) {
      const float* src = dxp + (int64_t(c) * Hp + h + s.pad_h) * Wp + s.pad_w;
      float* dst = dx + (int64_t(c) * H + h) * W;
      for (int w = 0; w < W; w++) dst[w] += src[w];
    }
  }
}

// A padded sample xp [Cin, Hp, Wp] → col [Cin·kh·kw, OH·OW]:
// col[(c, i, j), (oh, ow)] = xp[c, oh·stride_h + i, ow·stride_w + j]. The padding is already in xp, so
// the loops have no bounds to check.
void im2col(const Conv2dShape& s, const float* xp, float* col) {
  const int Hp = padded_h(s), Wp = padded_w(s), OH = s.out_h(), OW = s.out_w();
  const int sh = s.stride_h, sw = s.stride_w;
  float* dst = col;  // rows (c, i, j), then (oh, ow): col is written in order
  for (int c = 0; c < s.in_channels; c++) {
    const float* xp_c = xp + int64_t(c) * Hp * Wp;
    for (int i = 0; i < s.kernel_h; i++) {
      for (int j = 0; j < s.kernel_w; j++) {
        for (int oh = 0; oh < OH; oh++, dst += OW) {
          const float* src = xp_c + int64_t(oh * sh + i) * Wp + j;
          if (sw == 1) {
            for (int ow = 0; ow < OW; ow++) dst[ow] = src[ow];
          } else {
            for (int ow = 0; ow < OW; ow++) dst[ow] = src[ow * sw];
          }
        }
      }
    }
  }
}

// The adjoint of im2col: every entry of dcol [Cin·kh·kw, OH·OW] is added to the padded-sample pixel
// it was copied from, in dxp [Cin, Hp, Wp].
void col2im_add(const Conv2dShape& s, const float* dcol, float* dxp) {
  const int Hp = padded_h(s), Wp = padded_w(s), OH = s.out_h(), OW = s.out_w();
  const int sh = s.stride_h, sw = s.stride_w;
  const float* src = dcol;
  for (int c = 0; c < s.in_channels; c++) {
    float* dxp_c = dxp + int64_t(c) * Hp * Wp;
    for (int i = 0; i < s.kernel_h; i++) {
      for (int j = 0; j < s.kernel_w; j++) {
        for (int oh = 0; oh < OH; oh++, src += OW) {
          float* dst = dxp_c + int64_t(oh * sh + i) * Wp + j;
          if (sw == 1) {
            for (int ow = 0; ow < OW; ow++) dst[ow] += src[ow];
          } else {
            for (int ow = 0; ow < OW; ow++) dst[ow * sw] += src[ow];
          }
        }
      }
    }
  }
}

// im2col of one sample, through the padded buffer when the convolution pads.
const float* lower_sample(const Conv2dShape& s, const float* x_n, float* padded, float* col) {
  if (has_padding(s)) {
    pad_sample(s, x_n, padded);
    im2col(s, padded, col);
  } else {
    im2col(s, x_n, col);
  }
  return col;
}

// ---- one sample, each way ----

void forward_sample(const Conv2dShape& s, Path path, const float* x_n, const float* w, const float* b,
                    float* y_n, float* a, float* bbuf) {
  const int Cout = s.out_channels;
  const int64_t K = lowered_rows(s), P = out_plane(s);
  if (path == Path::direct) {
    pad_sample_wide(s, x_n, a);
    direct::forward_wide(direct::active_isa(), s.in_channels, Cout, s.kernel_h, s.kernel_w, padded_plane(s),
                         padded_w(s), wide_positions(s), a, w, bbuf);
    unwiden(Cout, s.out_h(), s.out_w(), padded_w(s), wide_positions(s), bbuf, b, false, y_n);
    return;
  }
  // start each output plane at its bias (or 0), then let the GEMM add on top
  for (int co = 0; co < Cout; co++) std::fill(y_n + co * P, y_n + (co + 1) * P, b != nullptr ? b[co] : 0.0f);
  if (K == 0) return;
  const float* col = path == Path::pointwise ? x_n : lower_sample(s, x_n, a, bbuf);
  // y_n[Cout, P] += w[Cout, K] · col[K, P]
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, int(P), int(K), 1.0f, w, int(K), col, int(P), 1.0f,
              y_n, int(P));
}

// dw partial: [Cout, kh·kw, Cin] when the direct kernel computes it, else dwᵀ [K, Cout].
bool dw_partial_channels_last(const Conv2dShape& s, Path path) {
  return path == Path::direct && direct_weight_grad(s, direct::active_isa());
}

void weight_grad_sample(const Conv2dShape& s, Path path, const float* x_n, const float* dy_n, float* a,
                        float* bbuf, float* dw_part) {
  const int Cout = s.out_channels;
  const int64_t K = lowered_rows(s), P = out_plane(s);
  if (dw_partial_channels_last(s, path)) {
    direct::channels_last(direct::active_isa(), s.in_channels, s.in_h, s.in_w, s.pad_h, s.pad_w, x_n, bbuf);
    direct::weight_grad_nhwc(direct::active_isa(), s.in_channels, Cout, s.kernel_h, s.kernel_w, s.out_h(),
                             s.out_w(), padded_w(s), bbuf, dy_n, dw_part);
    return;
  }
  const float* col = path == Path::pointwise ? x_n : lower_sample(s, x_n, a, bbuf);
  // dwᵀ[K, Cout] += col[K, P] · dy_n[Cout, P]ᵀ
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(K), Cout, int(P), 1.0f, col, int(P), dy_n, int(P), 1.0f,
              dw_part, Cout);
}

void input_grad_sample(const Conv2dShape& s, Path path, const float* w, const float* wf, const float* dy_n,
                       float* dx_n, float* a, float* bbuf) {
  const int Cin = s.in_channels, Cout = s.out_channels;
  const int64_t K = lowered_rows(s), P = out_plane(s);
  if (path == Path::direct) {
    // dx_n += the flipped convolution of dy_n, computed wide
    const Conv2dShape fs = flipped_shape(s);
    pad_sample_wide(fs, dy_n, a);
    direct::forward_wide(direct::active_isa(), Cout, Cin, s.kernel_h, s.kernel_w, padded_plane(fs), padded_w(fs),
                         wide_positions(fs), a, wf, bbuf);
    unwiden(Cin, s.in_h, s.in_w, padded_w(fs), wide_positions(fs), bbuf, nullptr, true, dx_n);
  } else if (path == Path::pointwise) {
    // dx_n[Cin, P] += w[Cout, Cin]ᵀ · dy_n[Cout, P]
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Cin, int(P), Cout, 1.0f, w, int(K), dy_n, int(P), 1.0f,
                dx_n, int(P));
  } else {
    // dcol[K, P] = w[Cout, K]ᵀ · dy_n[Cout, P], then scatter-add into dx_n (through the padded buffer)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(K), int(P), Cout, 1.0f, w, int(K), dy_n, int(P), 0.0f,
                bbuf, int(P));
    if (has_padding(s)) {
      std::fill(a, a + Cin * padded_plane(s), 0.0f);
      col2im_add(s, bbuf, a);
      unpad_add(s, a, dx_n);
    } else {
      col2im_add(s, bbuf, dx_n);
    }
  }
}

}  // namespace

int64_t conv2d_workspace_floats(const Conv2dShape& s) {
  const int64_t flipped_w = direct_fits(s) ? int64_t(s.out_channels) * lowered_rows(s) : 0;
  return thread_slots(s) * slot_sizes(s).floats() + flipped_w;
}
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y,
                    float* workspace) {
  const int64_t x_stride = int64_t(s.in_channels) * in_plane(s), y_stride = s.out_channels * out_plane(s);
  if (y_stride == 0 || s.batch <= 0) return;  // empty output
  const Slot slot = slot_sizes(s);
  const Path path = lowered_rows(s) == 0 ? Path::gemm : conv_path(s);  // (no input channels: y = b, or 0)
  BlasSingleThread one_blas_thread;
#pragma omp parallel for schedule(static) num_threads(thread_slots(s))
  for (int n = 0; n < s.batch; n++) {
    float* a = workspace + omp_get_thread_num() * slot.floats();
    forward_sample(s, path, x + n * x_stride, w, b, y + n * y_stride, a, a + slot.a);
  }
}

void conv2d_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db, float* workspace) {
  const int Cin = s.in_channels, Cout = s.out_channels;
  const int64_t K = lowered_rows(s), P = out_plane(s);
  const int64_t x_stride = Cin * in_plane(s), y_stride = Cout * P;
  if (y_stride == 0 || s.batch <= 0) return;  // nothing flows back
  if (K == 0) dx = dw = nullptr;              // no input channels or an empty kernel: only db
  const Slot slot = slot_sizes(s);
  const int T = thread_slots(s);
  const Path path = conv_path(s);

  float* wf = workspace + T * slot.floats();

  BlasSingleThread one_blas_thread;
#pragma omp parallel num_threads(T)
  {
    float* a = workspace + omp_get_thread_num() * slot.floats();
    float* bbuf = a + slot.a;
    float* dw_part = bbuf + slot.b;
    if (dw != nullptr) std::fill(dw_part, dw_part + slot.dw, 0.0f);

    // wf[ci, co, kh − 1 − i, kw − 1 − j] = w[co, ci, i, j]: the weights of the flipped convolution
    if (path == Path::direct && dx != nullptr) {
      const int taps = s.kernel_h * s.kernel_w;
#pragma omp for schedule(static)
      for (int ci = 0; ci < Cin; ci++)
        for (int co = 0; co < Cout; co++)
          for (int t = 0; t < taps; t++)  // tap t = i·kw + j flipped is taps − 1 − t
            wf[(int64_t(ci) * Cout + co) * taps + t] = w[(int64_t(co) * Cin + ci) * taps + taps - 1 - t];
    }

#pragma omp for schedule(static)
    for (int n = 0; n < s.batch; n++) {
      if (dw != nullptr) weight_grad_sample(s, path, x + n * x_stride, dy + n * y_stride, a, bbuf, dw_part);
      if (dx != nullptr) input_grad_sample(s, path, w, wf, dy + n * y_stride, dx + n * x_stride, a, bbuf);
    }
    // (the implicit barrier of the loop above: every partial is complete)

    if (dw != nullptr) {
      // dw[co, c, t] += Σ_threads dw_part, in thread order; the partial is [Cout, taps, Cin] or [K, Cout]
      const bool channels_last = dw_partial_channels_last(s, path);
      const int taps = s.kernel_h * s.kernel_w;
#pragma omp for schedule(static)
      for (int co = 0; co < Cout; co++) {
        for (int c = 0; c < Cin; c++) {
          for (int t = 0; t < taps; t++) {
            const int64_t k = int64_t(c) * taps + t;
            const int64_t at = channels_last ? (int64_t(co) * taps + t) * Cin + c : k * Cout + co;
            float sum = 0.0f;
            for (int u = 0; u < T; u++) sum += workspace[u * slot.floats() + slot.a + slot.b + at];
            dw[co * K + k] += sum;
          }
        }
      }
    }
    if (db != nullptr) {
      // db[co] += Σ_{n, p} dy[n, co, p]: a vectorised float sum per plane, the planes added in double
#pragma omp for schedule(static)
      for (int co = 0; co < Cout; co++) {
        double sum = 0.0;
        for (int n = 0; n < s.batch; n++) {
          const float* dy_c = dy + n * y_stride + co * P;
          float plane_sum = 0.0f;
#pragma omp simd reduction(+ : plane_sum)
          for (int64_t p = 0; p < P; p++) plane_sum += dy_c[p];
          sum += plane_sum;
        }
        db[co] += float(sum);
      }
    }
  }
}

}  // namespace raisin::cpu
