// The RAIS trace: plain CSV files per swapped-in PT solve (see trace.h and the FORMAT.txt text below).
#include "rais/trace.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "engine/error.h"
#include "rais/distribution.h"

namespace raisin::rais {

const char* const kTraceFormat =
    R"(RAIS trace (raisin, ../shared/RAIS.md §3-§5)
============================================

Written by the rais sampler when RaisOptions::trace_dir (CLI: --rais-trace DIR) is set. At every PT
solve that the sampler swaps in, also a failed one, three CSV files are written, NNNN being the solve
number (1, 2, ...; zero-padded to 4 digits, wider past 9999). Every file starts with one header line of
column names; fields are separated by commas; numbers are written in C "%.17g" (double) or "%.9g"
(float) form, which round-trip exactly; booleans are 0 or 1. A PT solve is launched at a step with the
records in the ring buffer at that time and swapped in record_batches steps later, at the draw of that
step, before the batch of that step is drawn.

solve_NNNN_records.csv: the records given to PT, one row per record (|D| rows; fewer than
record_batches x B only while the ring buffer is filling), in ring-buffer slot order.
  s0,s1,s2,s3  features of the drawn example as used for its p when it was drawn (RAIS.md §3):
               s0 = 1; s1 = last proxy norm if seen within the last epoch, else 0; s2 = last proxy
               norm if last seen an epoch or more ago, else 0; s3 = 1 if never seen, else 0
  v            the proxy gradient norm ṽ observed for the draw
  w            the weight w̃ = 1/(n·p) of the draw (1 during the shuffled warm-up)

solve_NNNN_result.csv: one row, the result of the solve.
  step_launched    the step at which PT was launched
  step_swapped_in  the step at which the result was swapped in
  ok               1: (c, d) usable and now in use; 0: the solve failed and the previous (c, d) stays
  converged        1: the Newton iteration met its tolerance
  floor_active     1: d0 (the constant feature's width) was raised to its floor, so H < 1
  iterations       Newton iterations
  H                the constraint value H(c, d) at the result (1 unless every residual is 0 or the
                   floor binds)
  objective        ⟨a, d⟩, a = Σ_i s_i over the examples at step_launched
  c0,c1,c2,c3      the centre parameters c (empty when the solve returned none)
  d0,d1,d2,d3      the width parameters d (empty when the solve returned none)
  message          why ok is 0, or empty; double-quoted, inner quotes doubled (RFC 4180)

solve_NNNN_examples.csv: every example at step_swapped_in, as the sampler uses it for that step's
draw (n rows, by index).
  index            the example's index, 0 .. n-1
  last_norm        its last observed proxy norm (0 if never seen)
  last_seen        the step at which it was last drawn (-1 = never)
  s0,s1,s2,s3      its features as used for p (as of the last rebuild of p: the swap-in step
                   itself after a successful solve or when p is rebuilt every step)
  p                its probability under the distribution in use for that step, rebuilt with the
                   (c, d) now in use (after a successful solve: the new one); sums to 1. While the
                   shuffled warm-up is still served (no successful solve yet) p = 1/n and s0..s3 are
                   computed at step_swapped_in.
)";

namespace {

// A FILE that throws raisin::Error (path and strerror) on every failure, including at close.
class CsvFile {
 public:
  explicit CsvFile(std::string path) : path_(std::move(path)), file_(std::fopen(path_.c_str(), "w")) {
    if (!file_) fail("cannot open");
  }
  ~CsvFile() {
    if (file_) std::fclose(file_);
  }
  CsvFile(const CsvFile&) = delete;
  CsvFile& operator=(const CsvFile&) = delete;

  void put(const char* text) {
    if (std::fputs(text, file_) < 0) fail("cannot write");
  }
  void put(const std::string& text) { put(text.c_str()); }
  void number(double x, bool comma = true) { format(comma ? "%.17g," : "%.17g", x); }
  void number(float x, bool comma = true) { format(comma ? "%.9g," : "%.9g", double(x)); }
  void integer(int64_t x, bool comma = true) {
    if (std::fprintf(file_, comma ? "%" PRId64 "," : "%" PRId64, x) < 0) fail("cannot write");
  }
  void close() {
    const bool bad = std::ferror(file_) != 0;
    const int saved = errno;
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (bad) {
      errno = saved;
      fail("cannot write");
    }
    if (rc != 0) fail("cannot close");
  }

 private:
  void format(const char* pattern, double x) {
    if (std::fprintf(file_, pattern, x) < 0) fail("cannot write");
  }
  [[noreturn]] void fail(const char* what) const {
    const int code = errno;
    throw error("rais trace: ", what, " ", path_, ": ", std::strerror(code));
  }

  std::string path_;
  std::FILE* file_;
};

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + '"';
}

void write_records(const std::string& path, const PtData& data) {
  CsvFile f(path);
  f.put("s0,s1,s2,s3,v,w\n");
  const size_t dim = data.num_features;
  for (size_t j = 0; j < data.num_records(); ++j) {
    for (size_t k = 0; k < dim; ++k) f.number(data.features[j * dim + k]);
    f.number(data.v[j]);
    f.number(data.w[j], false);
    f.put("\n");
  }
  f.close();
}

void write_result(const std::string& path, const TraceSolve& s) {
  const PtResult& r = *s.result;
  CsvFile f(path);
  f.put("step_launched,step_swapped_in,ok,converged,floor_active,iterations,H,objective,"
        "c0,c1,c2,c3,d0,d1,d2,d3,message\n");
  f.integer(s.step_launched);
  f.integer(s.step_swapped_in);
  f.integer(r.ok);
  f.integer(r.converged);
  f.integer(r.floor_active);
  f.integer(r.iterations);
  f.number(r.H);
  f.number(r.objective);
  for (const std::vector<double>* v : {&r.c, &r.d}) {
    for (size_t k = 0; k < size_t(kFeatureCount); ++k) {
      if (v->size() == size_t(kFeatureCount))
        f.number((*v)[k]);
      else
        f.put(",");
    }
  }
  f.put(quoted(r.message));
  f.put("\n");
  f.close();
}

void write_examples(const std::string& path, const TraceSolve& s) {
  CsvFile f(path);
  f.put("index,last_norm,last_seen,s0,s1,s2,s3,p\n");
  for (int64_t i = 0; i < s.n; ++i) {
    f.integer(i);
    f.number(s.last_norm[i]);
    f.integer(s.last_seen[i]);
    for (int k = 0; k < kFeatureCount; ++k) f.number(s.features[size_t(i) * kFeatureCount + k]);
    f.number(s.p[i], false);
    f.put("\n");
  }
  f.close();
}

}  // namespace

TraceWriter::TraceWriter(std::string dir) : dir_(std::move(dir)) {
  if (dir_.empty()) throw error("rais trace: empty trace folder");
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw error("rais trace: cannot create folder ", dir_, ": ", std::strerror(ec.value()));
  if (!std::filesystem::is_directory(dir_, ec))
    throw error("rais trace: ", dir_, " is not a folder: ", std::strerror(ec ? ec.value() : ENOTDIR));
  CsvFile f(dir_ + "/FORMAT.txt");
  f.put(kTraceFormat);
  f.close();
}

std::string TraceWriter::solve_path(int64_t number, const char* kind) const {
  char name[64];
  std::snprintf(name, sizeof name, "solve_%04" PRId64 "_%s.csv", number, kind);
  return dir_ + "/" + name;
}

void TraceWriter::write_solve(const TraceSolve& s) const {
  if (!s.data || !s.result || (s.n > 0 && (!s.last_norm || !s.last_seen || !s.features || !s.p)))
    throw error("rais trace: incomplete solve ", s.number);
  if (s.data->num_features != size_t(kFeatureCount) && s.data->num_records() > 0)
    throw error("rais trace: records have ", s.data->num_features, " features, expected ", kFeatureCount);
  write_records(solve_path(s.number, "records"), *s.data);
  write_result(solve_path(s.number, "result"), s);
  write_examples(solve_path(s.number, "examples"), s);
}

}  // namespace raisin::rais
