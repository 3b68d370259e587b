// CPU fused softmax-cross-entropy: for each example i with logits z_i [classes], label y_i and
// importance weight ω_i (1 when weights is null), one pass produces
//   example_loss[i] = logsumexp(z_i) − z_i[y_i]
//   dlogits[i]      = ω_i · (softmax(z_i) − onehot(y_i)) / batch
//   proxy_norm[i]   = ‖softmax(z_i) − onehot(y_i)‖₂   (RAIS's per-example gradient-norm proxy)
// and mean_loss[0] = (1/batch) Σ_i ω_i · example_loss[i]. The backward kernel only scales the stored
// dlogits by the upstream scalar and accumulates them.
//
// Stability: exponentials are taken of z − max(z) ≤ 0 in double, so logits near ±FLT_MAX neither
// overflow nor produce inf − inf. A confident prediction (p_y → 1) keeps its relative accuracy:
// the loss is (max − z_y) + log1p(Σ_{j≠argmax} e^{z_j − max}), and the label's entry of
// softmax − onehot is −(Σ_{j≠y} e^{z_j − max}) / Σ_j e^{z_j − max} rather than p_y − 1.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/kernels.h"

namespace raisin::cpu {

void softmax_cross_entropy_forward(const kernels::LossShape& s, const float* logits, const int32_t* labels,
                                   const float* weights, float* example_loss, float* mean_loss,
                                   float* dlogits, float* proxy_norm) {
  const int B = s.batch, K = s.classes;
  const double inv_batch = B > 0 ? 1.0 / double(B) : 0.0;

#pragma omp parallel for schedule(static) if (int64_t(B) * K > 4096)
  for (int i = 0; i < B; ++i) {
    const float* z = logits + int64_t(i) * K;
    float* g = dlogits + int64_t(i) * K;
    const int y = labels[i];
    const double w = weights ? double(weights[i]) : 1.0;

    // max (first index on ties), then the sums of e_j = exp(z_j − max) without the max's term
    // (which is exactly 1) and without the label's term
    int jmax = 0;
    for (int j = 1; j < K; ++j)
      if (z[j] > z[jmax]) jmax = j;
    const double zmax = z[jmax];
    double sum_not_max = 0.0, sum_not_label = 0.0;
    for (int j = 0; j < K; ++j) {
      const double e = std::exp(double(z[j]) - zmax);
      if (j != jmax) sum_not_max += e;
      if (j != y) sum_not_label += e;
    }
    const double sum = 1.0 + sum_not_max;  // Σ_j e_j

    // ℓ = logsumexp(z) − z_y = (max − z_y) + log1p(Σ_{j≠max} e_j)
    example_loss[i] = float((zmax - double(z[y])) + std::log1p(sum_not_max));

    // softmax − onehot, its norm, and the weighted, batch-averaged gradient
    const double inv_sum = 1.0 / sum;
    const double scale = w * inv_batch;
    double sq = 0.0;
    for (int j = 0; j < K; ++j) {
      const double d = (j == y) ? -sum_not_label * inv_sum : std::exp(double(z[j]) - zmax) * inv_sum;
      sq += d * d;
      g[j] = float(scale * d);
    }
    if (proxy_norm) proxy_norm[i] = float(std::sqrt(sq));
  }

  // The mean in a fixed order, so the result does not depend on the thread count.
  double total = 0.0;
  for (int i = 0; i < B; ++i) total += (weights ? double(weights[i]) : 1.0) * double(example_loss[i]);
  mean_loss[0] = float(total * inv_batch);
}

void softmax_cross_entropy_backward(const kernels::LossShape& s, const float* dmean_loss, const float* dlogits,
                                    float* dlogits_out) {
  if (!dlogits_out) return;
  const int64_t n = int64_t(s.batch) * s.classes;
  const float scale = dmean_loss[0];
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t k = 0; k < n; ++k) dlogits_out[k] += scale * dlogits[k];
}

}  // namespace raisin::cpu
