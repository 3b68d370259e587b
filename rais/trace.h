// The RAIS trace (RaisOptions::trace_dir): at every PT solve the sampler swaps in (also a failed one)
// it writes plain CSV files into the trace folder, numbered by the solve (1-based, 4 digits):
//
//   solve_NNNN_records.csv   the records given to PT (s0..s3, v, w), one row per record
//   solve_NNNN_result.csv    one row: the PtResult and when the solve was launched and swapped in
//   solve_NNNN_examples.csv  every example at the swap-in step: its state, features and p
//
// and FORMAT.txt (written once, when the writer is made) documenting every column; kTraceFormat holds
// its text. Writing reads the sampler's state only, so a traced run draws exactly like an untraced
// one. Every failure to create the folder or write a file throws raisin::Error naming the path and
// strerror.
#pragma once
#include <cstdint>
#include <string>

#include "rais/pt.h"

namespace raisin::rais {

extern const char* const kTraceFormat;

// The state written for one swapped-in solve. Pointers are borrowed for the call.
struct TraceSolve {
  int64_t number = 0;               // 1-based solve number (RaisStats::solves after the swap-in)
  int64_t step_launched = 0;        // the step at which PT was launched (the records are as of then)
  int64_t step_swapped_in = 0;      // the step at which its result was swapped in
  const PtData* data = nullptr;     // the records and a given to the solve
  const PtResult* result = nullptr; // what the solve returned
  // Snapshot of the n examples as the sampler uses them at the swap-in step.
  int64_t n = 0;
  const float* last_norm = nullptr;   // n
  const int64_t* last_seen = nullptr; // n
  const float* features = nullptr;    // n × kFeatureCount, row-major
  const double* p = nullptr;          // n, sums to 1
};

class TraceWriter {
 public:
  // Creates `dir` (and its parents) if needed and writes dir/FORMAT.txt.
  explicit TraceWriter(std::string dir);
  const std::string& dir() const { return dir_; }
  // Writes the three files of one solve.
  void write_solve(const TraceSolve& solve) const;
  // dir/solve_NNNN_<kind>.csv for kind "records", "result" or "examples".
  std::string solve_path(int64_t number, const char* kind) const;

 private:
  std::string dir_;
};

}  // namespace raisin::rais
