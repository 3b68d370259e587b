// Problem PT (../shared/RAIS.md §4) by damped projected Newton on the equivalent problem
//
//   min H(c, d) over c ≥ 0, d ≥ 0, ⟨a, d⟩ = 1,   then d ← H*·d.
//
// Working variables (only the K features kept in the solve): c' = c / v̄ and x_k = a_k d_k (so the
// equality is Σ x = 1, the simplex), with ṽ normalised by its weighted mean v̄ = Σ w̃ṽ / Σ w̃. H is
// jointly convex and each record's term w̃ e²/δ (e = ṽ − ⟨c, s̃⟩, δ = ⟨d, s̃⟩) has the rank-one Hessian
// (2w̃/δ)·u uᵀ with u = (s̃, (e/δ)·s̃/a), so the exact Hessian costs O(|D|·K²). Each iteration
// minimises the quadratic model over {c' ≥ 0, x ≥ 0, Σ x = 1} with a small primal active-set QP
// solver (dense, 2K ≤ 64 variables), then backtracks (Armijo) along the step; H = +∞ wherever some
// record with e ≠ 0 would get δ ≤ 0, so the line search also keeps the iterate in H's domain. It stops
// when the model predicts a relative decrease below options.tolerance (Newton: quadratic convergence,
// so the KKT residuals are then at rounding level). H and its derivatives are summed over fixed blocks
// of records on OpenMP threads (rais/blocks.h): the result does not depend on the thread count.
#include "rais/pt.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "rais/blocks.h"

namespace raisin::rais {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kRecordBlock = 512;  // records per block of H and its derivatives

bool all_finite(const std::vector<double>& x) {
  return std::all_of(x.begin(), x.end(), [](double t) { return std::isfinite(t); });
}

// Solves the dense n×n system M·x = r in place (r becomes x) by Gaussian elimination with partial
// pivoting; false when singular.
bool dense_solve(std::vector<double> M, std::vector<double>& r, size_t n) {
  for (size_t col = 0; col < n; ++col) {
    size_t piv = col;
    for (size_t i = col + 1; i < n; ++i)
      if (std::fabs(M[i * n + col]) > std::fabs(M[piv * n + col])) piv = i;
    if (!(std::fabs(M[piv * n + col]) > 1e-300)) return false;
    if (piv != col) {
      for (size_t k = 0; k < n; ++k) std::swap(M[col * n + k], M[piv * n + k]);
      std::swap(r[col], r[piv]);
    }
    for (size_t i = col + 1; i < n; ++i) {
      const double f = M[i * n + col] / M[col * n + col];
      if (f == 0) continue;
      for (size_t k = col; k < n; ++k) M[i * n + k] -= f * M[col * n + k];
      r[i] -= f * r[col];
    }
  }
  for (size_t i = n; i-- > 0;) {
    double s = r[i];
    for (size_t k = i + 1; k < n; ++k) s -= M[i * n + k] * r[k];
    r[i] = s / M[i * n + i];
  }
  return all_finite(r);
}

// Primal active-set method for min ½(y−z)ᵀQ(y−z) + gᵀ(y−z) over y ≥ 0 with Σ_{i: eq[i]} y_i = 1,
// starting from the feasible z. Q is symmetric positive definite (regularised). Returns false when a
// linear solve fails or the iteration limit is hit (y then holds the last feasible iterate).
bool solve_qp(const std::vector<double>& Q, const std::vector<double>& g, const std::vector<double>& z,
              const std::vector<char>& eq, std::vector<double>& y) {
  const size_t n = z.size();
  y = z;
  std::vector<char> fixed(n);
  for (size_t i = 0; i < n; ++i) fixed[i] = y[i] <= 0;
  // At least one equality variable must stay free (Σ y = 1 keeps one positive).
  for (int iter = 0; iter < 50 * static_cast<int>(n) + 50; ++iter) {
    std::vector<double> r(n);  // gradient of the model at y
    for (size_t i = 0; i < n; ++i) {
      double s = g[i];
      for (size_t k = 0; k < n; ++k) s += Q[i * n + k] * (y[k] - z[k]);
      r[i] = s;
    }
    std::vector<size_t> F;
    bool has_eq = false;
    for (size_t i = 0; i < n; ++i)
      if (!fixed[i]) {
        F.push_back(i);
        has_eq = has_eq || eq[i];
      }
    const size_t nf = F.size(), m = nf + (has_eq ? 1 : 0);
    std::vector<double> M(m * m, 0.0), rhs(m, 0.0);
    for (size_t a = 0; a < nf; ++a) {
      for (size_t b = 0; b < nf; ++b) M[a * m + b] = Q[F[a] * n + F[b]];
      rhs[a] = -r[F[a]];
      if (has_eq && eq[F[a]]) M[a * m + nf] = M[nf * m + a] = 1.0;
    }
    if (!dense_solve(std::move(M), rhs, m)) return false;
    const double lambda = has_eq ? rhs[nf] : 0.0;
    double alpha = 1.0;
    size_t block = n;
    for (size_t a = 0; a < nf; ++a) {
      const double p = rhs[a];
      if (p < 0 && y[F[a]] + alpha * p < 0) {
        alpha = -y[F[a]] / p;
        block = F[a];
      }
    }
    for (size_t a = 0; a < nf; ++a) y[F[a]] = std::max(0.0, y[F[a]] + alpha * rhs[a]);
    if (block < n) {
      y[block] = 0;
      fixed[block] = 1;
      continue;
    }
    // At the minimiser over the working set: multipliers of the fixed bounds, μ_i = r_i + λ·[eq_i]
    // with r at the new y (= old r + Q p).
    double scale = std::fabs(lambda);
    std::vector<double> rn(n);
    for (size_t i = 0; i < n; ++i) {
      double s = g[i];
      for (size_t k = 0; k < n; ++k) s += Q[i * n + k] * (y[k] - z[k]);
      rn[i] = s;
      scale = std::max(scale, std::fabs(s));
    }
    size_t release = n;
    double worst = -1e-12 * scale;
    for (size_t i = 0; i < n; ++i) {
      if (!fixed[i]) continue;
      const double mu = rn[i] + (eq[i] ? lambda : 0.0);
      if (mu < worst) {
        worst = mu;
        release = i;
      }
    }
    if (release == n) return true;
    fixed[release] = 0;
  }
  return false;
}

// The solve's working form: K kept features, normalised values.
struct Work {
  size_t m = 0, K = 0;
  std::vector<double> sc;  // m × K: s̃_jk
  std::vector<double> sx;  // m × K: s̃_jk / a_k
  std::vector<double> v;   // ṽ / v̄
  std::vector<double> wm;  // w̃ / |D|
};

// H at z = (c', x); +∞ outside the domain.
double work_H(const Work& W, const std::vector<double>& z) {
  std::vector<double> partial(size_t(block_count(int64_t(W.m), kRecordBlock)));
  for_blocks(int64_t(W.m), kRecordBlock, [&](int64_t begin, int64_t end, int64_t b) {
    double H = 0;
    for (size_t j = size_t(begin); j < size_t(end); ++j) {
      double ch = 0, dl = 0;
      for (size_t k = 0; k < W.K; ++k) {
        ch += z[k] * W.sc[j * W.K + k];
        dl += z[W.K + k] * W.sx[j * W.K + k];
      }
      const double e = W.v[j] - ch;
      if (e == 0) continue;
      if (!(dl > 0)) {
        H = kInf;
        break;
      }
      H += W.wm[j] * e * e / dl;
    }
    partial[size_t(b)] = H;
  });
  double H = 0;
  for (double h : partial) H += h;
  return std::isfinite(H) ? H : kInf;
}

// Gradient and exact Hessian (2K × 2K, row-major) of H at z.
void work_derivatives(const Work& W, const std::vector<double>& z, std::vector<double>& g,
                      std::vector<double>& Q) {
  const size_t K = W.K, n = 2 * K, size = n + n * n;  // per block: g, then the upper triangle of Q
  const int64_t blocks = block_count(int64_t(W.m), kRecordBlock);
  std::vector<double> partial(size_t(blocks) * size, 0.0);
  for_blocks(int64_t(W.m), kRecordBlock, [&](int64_t begin, int64_t end, int64_t block) {
    double* gb = &partial[size_t(block) * size];
    double* Qb = gb + n;
    std::vector<double> u(n);
    for (size_t j = size_t(begin); j < size_t(end); ++j) {
      const double* sc = &W.sc[j * K];
      const double* sx = &W.sx[j * K];
      double ch = 0, dl = 0;
      for (size_t k = 0; k < K; ++k) {
        ch += z[k] * sc[k];
        dl += z[K + k] * sx[k];
      }
      if (!(dl > 0)) continue;  // only reached with e = 0: the term is identically 0 here
      const double e = W.v[j] - ch, q = e / dl, wt = W.wm[j];
      for (size_t k = 0; k < K; ++k) {
        gb[k] -= 2 * wt * q * sc[k];
        gb[K + k] -= wt * q * q * sx[k];
        u[k] = sc[k];
        u[K + k] = q * sx[k];
      }
      const double h = 2 * wt / dl;
      for (size_t a = 0; a < n; ++a) {
        const double ha = h * u[a];
        if (ha == 0) continue;
        double* row = &Qb[a * n];
        for (size_t b = a; b < n; ++b) row[b] += ha * u[b];
      }
    }
  });
  g.assign(n, 0.0);
  Q.assign(n * n, 0.0);
  for (int64_t block = 0; block < blocks; ++block) {
    const double* gb = &partial[size_t(block) * size];
    for (size_t i = 0; i < n; ++i) g[i] += gb[i];
    for (size_t a = 0; a < n; ++a)
      for (size_t b = a; b < n; ++b) Q[a * n + b] += gb[n + a * n + b];
  }
  for (size_t a = 0; a < n; ++a)
    for (size_t b = 0; b < a; ++b) Q[a * n + b] = Q[b * n + a];
}

std::string check_input(const PtData& D) {
  const size_t K = D.num_features, m = D.num_records();
  if (K == 0) return "PT: no features";
  if (m == 0) return "PT: no records";
  if (D.w.size() != m || D.features.size() != m * K || D.a.size() != K) return "PT: inconsistent sizes";
  for (double t : D.features)
    if (!std::isfinite(t) || t < 0) return "PT: features must be finite and >= 0";
  for (size_t j = 0; j < m; ++j) {
    if (!std::isfinite(D.v[j]) || D.v[j] < 0) return "PT: proxy norms must be finite and >= 0";
    if (!std::isfinite(D.w[j]) || !(D.w[j] > 0)) return "PT: weights must be finite and > 0";
  }
  for (double t : D.a)
    if (!std::isfinite(t) || t < 0) return "PT: a must be finite and >= 0";
  return {};
}

}  // namespace

double PtKkt::max_residual() const { return std::max({primal, dual, complementarity}); }

std::vector<bool> pt_active_features(const PtData& data) {
  const size_t K = data.num_features;
  std::vector<bool> act(K, false);
  for (size_t j = 0; j < data.num_records(); ++j)
    for (size_t k = 0; k < K; ++k)
      if (data.features[j * K + k] > 0) act[k] = true;
  for (size_t k = 0; k < K; ++k)
    if (!(data.a[k] > 0)) act[k] = false;
  return act;
}

double pt_constraint(const PtData& data, const std::vector<double>& c, const std::vector<double>& d) {
  const size_t K = data.num_features, m = data.num_records();
  double H = 0;
  for (size_t j = 0; j < m; ++j) {
    double ch = 0, dl = 0;
    for (size_t k = 0; k < K; ++k) {
      ch += c[k] * data.features[j * K + k];
      dl += d[k] * data.features[j * K + k];
    }
    const double e = data.v[j] - ch;
    if (e == 0) continue;
    if (!(dl > 0)) return kInf;
    H += data.w[j] * e * e / dl;
  }
  return H / static_cast<double>(m);
}

PtKkt kkt_residual(const PtData& data, const std::vector<double>& c, const std::vector<double>& d) {
  const size_t K = data.num_features, m = data.num_records();
  const std::vector<bool> act = pt_active_features(data);
  PtKkt r;
  r.nu_c.assign(K, 0.0);
  r.nu_d.assign(K, 0.0);
  double mu = 0;
  for (size_t k = 0; k < K; ++k) mu += data.a[k] * d[k];
  std::vector<double> sc(K, 0.0), sc_abs(K, 0.0), sd(K, 0.0);
  bool any_residual = false;
  for (size_t j = 0; j < m; ++j) {
    const double* s = &data.features[j * K];
    double ch = 0, dl = 0;
    for (size_t k = 0; k < K; ++k) {
      ch += c[k] * s[k];
      dl += d[k] * s[k];
    }
    const double e = data.v[j] - ch;
    if (e == 0) continue;
    any_residual = true;
    if (!(dl > 0)) {
      r.finite = false;
      continue;
    }
    for (size_t k = 0; k < K; ++k) {
      sc[k] += data.w[j] * e * s[k] / dl;
      sc_abs[k] += data.w[j] * std::fabs(e) * s[k] / dl;
      sd[k] += data.w[j] * e * e * s[k] / (dl * dl);
    }
  }
  const double md = static_cast<double>(m);
  r.H = pt_constraint(data, c, d);
  r.primal = any_residual ? std::fabs(r.H - 1.0) : 0.0;
  const double mu_scale = mu > 0 ? mu : 1e-300;
  for (size_t k = 0; k < K; ++k) {
    if (!act[k]) continue;
    r.nu_c[k] = -(2 * mu / md) * sc[k];
    r.nu_d[k] = data.a[k] - (mu / md) * sd[k];
    const double cscale = (2 * mu / md) * sc_abs[k];
    if (r.nu_c[k] < 0 && cscale > 0) r.dual = std::max(r.dual, -r.nu_c[k] / cscale);
    if (r.nu_d[k] < 0) r.dual = std::max(r.dual, -r.nu_d[k] / data.a[k]);
    r.complementarity = std::max({r.complementarity, std::fabs(r.nu_c[k] * c[k]) / mu_scale,
                                  std::fabs(r.nu_d[k] * d[k]) / mu_scale});
  }
  if (!std::isfinite(r.H) || !std::isfinite(r.dual) || !std::isfinite(r.complementarity)) r.finite = false;
  return r;
}

PtResult solve_pt(const PtData& data, const PtOptions& options, const PtResult* warm) {
  PtResult res;
  const size_t Kall = data.num_features, m = data.num_records();
  res.c.assign(Kall, 0.0);
  res.d.assign(Kall, 0.0);
  if (std::string err = check_input(data); !err.empty()) {
    res.message = err;
    return res;
  }
  res.active = pt_active_features(data);
  std::vector<size_t> keep;
  for (size_t k = 0; k < Kall; ++k)
    if (res.active[k]) keep.push_back(k);

  double sw = 0, swv = 0;
  for (size_t j = 0; j < m; ++j) {
    sw += data.w[j];
    swv += data.w[j] * data.v[j];
  }
  const double vbar = swv / sw;
  if (!std::isfinite(vbar)) {
    res.message = "PT: non-finite weighted mean of the proxy norms";
    return res;
  }
  const double floor_value = options.floor_fraction * vbar * vbar;
  auto finish = [&](PtResult& r) {
    const int cf = options.const_feature;
    if (cf >= 0 && static_cast<size_t>(cf) < Kall && r.d[cf] < floor_value) {
      r.d[cf] = floor_value;
      r.floor_active = true;
    }
    r.objective = 0;
    for (size_t k = 0; k < Kall; ++k) r.objective += data.a[k] * r.d[k];
    r.kkt = kkt_residual(data, r.c, r.d);
    r.H = r.kkt.H;
    if (!all_finite(r.c) || !all_finite(r.d) || !std::isfinite(r.objective)) {
      r.ok = false;
      r.message = "PT: non-finite solution";
    }
  };

  if (vbar == 0) {  // every ṽ is 0: c = d = 0 is optimal
    res.ok = res.converged = true;
    finish(res);
    return res;
  }

  Work W;
  W.m = m;
  W.K = keep.size();
  const size_t K = W.K;
  W.sc.resize(m * K);
  W.sx.resize(m * K);
  W.v.resize(m);
  W.wm.resize(m);
  for (size_t j = 0; j < m; ++j) {
    bool any = false;
    for (size_t i = 0; i < K; ++i) {
      const double s = data.features[j * Kall + keep[i]];
      W.sc[j * K + i] = s;
      W.sx[j * K + i] = s / data.a[keep[i]];
      any = any || s > 0;
    }
    W.v[j] = data.v[j] / vbar;
    W.wm[j] = data.w[j] / static_cast<double>(m);
    if (!any && data.v[j] > 0) {
      res.message = "PT: a record with a positive proxy norm has no kept feature (no bounded solution)";
      return res;
    }
  }

  // Starting point: warm (c, d) when usable, else c = 0 and x uniform.
  const size_t n = 2 * K;
  std::vector<double> z(n, 0.0);
  for (size_t i = 0; i < K; ++i) z[K + i] = 1.0 / static_cast<double>(K);
  const double H_cold = work_H(W, z);
  double H = H_cold;
  if (warm && warm->ok && warm->c.size() == Kall && warm->d.size() == Kall && all_finite(warm->c) &&
      all_finite(warm->d)) {
    std::vector<double> zw(n, 0.0);
    double sum = 0;
    for (size_t i = 0; i < K; ++i) {
      zw[i] = std::max(0.0, warm->c[keep[i]]) / vbar;
      zw[K + i] = std::max(0.0, data.a[keep[i]] * warm->d[keep[i]]);
      sum += zw[K + i];
    }
    if (sum > 0) {
      for (size_t i = 0; i < K; ++i) zw[K + i] /= sum;
      const double Hw = work_H(W, zw);
      if (std::isfinite(Hw)) {
        z = zw;
        H = Hw;
      }
    }
  }
  if (!std::isfinite(H)) {
    res.message = "PT: non-finite objective at the starting point";
    return res;
  }

  std::vector<char> eq(n, 0);
  for (size_t i = K; i < n; ++i) eq[i] = 1;
  std::vector<double> g, Q, y(n), p(n), trial(n);
  const double zero_level = 1e-26 * std::max(H_cold, 1e-300);
  for (res.iterations = 0; res.iterations < options.max_iterations;) {
    if (H <= zero_level) {  // every residual is (numerically) 0
      res.converged = true;
      break;
    }
    work_derivatives(W, z, g, Q);
    double maxdiag = 0;
    for (size_t i = 0; i < n; ++i) maxdiag = std::max(maxdiag, Q[i * n + i]);
    for (size_t i = 0; i < n; ++i) Q[i * n + i] += 1e-12 * Q[i * n + i] + 1e-30 * maxdiag;
    if (!all_finite(g) || !all_finite(Q)) {
      res.message = "PT: non-finite derivatives";
      return res;
    }
    if (!solve_qp(Q, g, z, eq, y)) {
      res.message = "PT: Newton subproblem failed";
      break;
    }
    double gp = 0, pQp = 0;
    for (size_t i = 0; i < n; ++i) p[i] = y[i] - z[i];
    for (size_t i = 0; i < n; ++i) {
      gp += g[i] * p[i];
      double s = 0;
      for (size_t k = 0; k < n; ++k) s += Q[i * n + k] * p[k];
      pQp += p[i] * s;
    }
    const double predicted = -(gp + 0.5 * pQp);
    ++res.iterations;
    if (!(gp < 0) || predicted <= options.tolerance * H) {
      res.converged = true;
      break;
    }
    double alpha = 1.0, Ht = kInf;
    bool accepted = false;
    for (int ls = 0; ls < 60; ++ls, alpha *= 0.5) {
      for (size_t i = 0; i < n; ++i) trial[i] = std::max(0.0, z[i] + alpha * p[i]);
      double sx = 0;
      for (size_t i = K; i < n; ++i) sx += trial[i];
      for (size_t i = K; i < n; ++i) trial[i] /= sx;
      Ht = work_H(W, trial);
      if (Ht <= H + 1e-4 * alpha * gp) {
        accepted = true;
        break;
      }
    }
    if (!accepted) {
      // No decrease left at rounding level counts as converged; otherwise report it.
      res.converged = predicted <= 1e-10 * H;
      if (!res.converged) res.message = "PT: line search failed";
      break;
    }
    const double old = H;
    z = trial;
    H = Ht;
    if (old - H <= 1e-15 * old) {
      res.converged = true;
      break;
    }
  }

  // Back to PT: c = v̄·c', d = v̄²·H*·x/a.
  for (size_t i = 0; i < K; ++i) {
    res.c[keep[i]] = vbar * z[i];
    res.d[keep[i]] = vbar * vbar * H * z[K + i] / data.a[keep[i]];
  }
  res.ok = std::isfinite(H);
  if (!res.ok && res.message.empty()) res.message = "PT: non-finite objective";
  finish(res);
  if (res.ok && !res.kkt.finite) {
    res.ok = false;
    res.message = "PT: constraint not finite at the solution";
  }
  return res;
}

}  // namespace raisin::rais
