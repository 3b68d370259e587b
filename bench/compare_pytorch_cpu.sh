#!/usr/bin/env bash
# raisin against PyTorch on this machine, in one run: training images/s of lenet5 (1x28x28) and
# resnet20 (3x32x32), batch 128, fp32, both on the same number of CPU threads. Prints a markdown table.
#   bench/compare_pytorch_cpu.sh [build folder, default build/release] [threads, default: all cores]
# Needs Debian's python3-torch (apt-get install python3-torch) and a build with benchmarks
# (cmake -DRAISIN_BENCH=ON, the default).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
threads=${2:-$(nproc)}
bench=$build/bench/raisin_train_bench
[[ -x $bench ]] || { echo "no $bench: build it with cmake --build $build --target raisin_train_bench" >&2; exit 1; }

declare -A raisin torch
while read -r name rate; do raisin[$name]=$rate; done < <(
  OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads "$bench" --benchmark_filter='lenet5|resnet20' \
    --benchmark_min_time=5 --benchmark_format=csv 2>/dev/null |
    awk -F, '/BM_TrainStep/ { split($1, p, "/"); print p[2], $7 }')
while read -r name rate; do torch[$name]=$rate; done < <(
  /usr/bin/python3 bench/pytorch_train_bench.py --threads "$threads" --models lenet5,resnet20 --seconds 10)

echo "| model (batch 128, fp32, $threads threads) | raisin images/s | PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') images/s | raisin / PyTorch |"
echo "|---|---|---|---|"
for name in lenet5 resnet20; do
  awk -v n="$name" -v r="${raisin[$name]}" -v t="${torch[$name]}" 'BEGIN { printf "| %s | %.0f | %.0f | %.2f |\n", n, r, t, r / t }'
done
