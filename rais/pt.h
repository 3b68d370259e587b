// Problem PT (../shared/RAIS.md §4): fit the uncertainty set's parameters (c, d) to recorded
// (features, proxy norm, weight) triples.
//
//   minimise ⟨a, d⟩  over c, d ≥ 0
//   subject to H(c, d) = (1/|D|) Σ_j w̃_j (ṽ_j − ⟨c, s̃_j⟩)² / ⟨d, s̃_j⟩ ≤ 1,
//
// where a = Σ_i s_i over the current examples. solve_pt() solves the equivalent problem
// min H(c, d) over c, d ≥ 0 with ⟨a, d⟩ = 1 and then scales d by the optimal H (so the constraint is
// tight, H = 1, and the objective ⟨a, d⟩ equals that optimal H), by a damped projected Newton method
// on the joint (c, d) variables with the exact Hessian; see pt.cpp. Features that are zero on every
// record or have a_k = 0 are left out (c_k = d_k = 0). Every failure (bad input, infeasible data,
// non-finite values) is reported through PtResult::ok and never silently returns garbage.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace raisin::rais {

// The recorded data of PT. Records are row-major: features[j*num_features + k] = s̃_jk.
struct PtData {
  size_t num_features = 0;          // d
  std::vector<double> features;     // |D| × d, every entry ≥ 0
  std::vector<double> v;            // ṽ_j ≥ 0, size |D|
  std::vector<double> w;            // w̃_j > 0, size |D|
  std::vector<double> a;            // Σ_i s_i over the current examples, size d, ≥ 0
  size_t num_records() const { return v.size(); }
};

struct PtOptions {
  // Index of the constant feature whose d is kept ≥ floor_fraction·(mean ṽ)² (mean weighted by
  // w̃); −1 for none. The floor is applied after the solve by raising d_const, which makes the set
  // larger than needed (H < 1) whenever it binds; PtResult::floor_active says so.
  int const_feature = 0;
  double floor_fraction = 1e-2;
  int max_iterations = 100;
  // Stop when the Newton model predicts a relative decrease of H below this.
  double tolerance = 1e-16;
};

// Stationarity and complementarity of PT's KKT conditions at (c, d), from RAIS.md §4:
//   ν_c = −(2μ/|D|) Σ w̃_j e_j s̃_j/δ_j ≥ 0, ν_c ⊙ c = 0;  ν_d = a − (μ/|D|) Σ w̃_j e_j² s̃_j/δ_j² ≥ 0,
//   ν_d ⊙ d = 0;  with e_j = ṽ_j − ⟨c, s̃_j⟩, δ_j = ⟨d, s̃_j⟩, μ = ⟨a, d⟩.
// Only the features kept in the solve are checked (the others report ν = 0).
// Relative measures: negative parts of ν_c,k are divided by (2μ/|D|) Σ w̃_j |e_j| s̃_jk/δ_j, those of
// ν_d,k by a_k; |ν_c,k c_k| and |ν_d,k d_k| by μ; the constraint as |H − 1|.
struct PtKkt {
  std::vector<double> nu_c, nu_d;
  double H = 0;                     // constraint value at (c, d)
  double primal = 0;                // |H − 1| (0 when every residual e_j is 0)
  double dual = 0;                  // largest relative negative part of ν_c, ν_d
  double complementarity = 0;       // largest relative |ν ⊙ (c, d)|
  double max_residual() const;      // max of the three
  bool finite = true;
};

PtKkt kkt_residual(const PtData& data, const std::vector<double>& c, const std::vector<double>& d);

// Which features enter the solve: a_k > 0 and s̃_jk > 0 for some record.
std::vector<bool> pt_active_features(const PtData& data);

// H(c, d); +∞ when some record with e_j ≠ 0 has δ_j ≤ 0.
double pt_constraint(const PtData& data, const std::vector<double>& c, const std::vector<double>& d);

struct PtResult {
  bool ok = false;                  // false: bad input, infeasible data or non-finite result; c, d unusable
  bool converged = false;           // the Newton iteration met its tolerance
  bool floor_active = false;        // d_const was raised to the floor
  std::string message;              // why ok is false, or empty
  std::vector<double> c, d;         // size num_features (0 for left-out features)
  std::vector<bool> active;         // features kept in the solve
  double H = 0;                     // constraint value at (c, d): 1 unless every residual is 0 or the floor binds
  double objective = 0;             // ⟨a, d⟩
  int iterations = 0;               // Newton iterations
  PtKkt kkt;                        // KKT residuals at (c, d)
};

// Solves PT. `warm` (e.g. the previous PtResult) is used as the starting point when it is ok and
// gives a finite H; otherwise the solve starts cold.
PtResult solve_pt(const PtData& data, const PtOptions& options = {}, const PtResult* warm = nullptr);

}  // namespace raisin::rais
