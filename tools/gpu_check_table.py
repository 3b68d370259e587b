"""The short table that ends tools/gpu-check: test counts (and failures) from ctest's JUnit file; each CUDA
kernel benchmark's time per launch and achieved GB/s or GFLOP/s; training images/s of raisin and PyTorch
(eager, compiled) on the same GPU, RAIS's overhead per step; the CLI's one-epoch MNIST run.
usage: python3 tools/gpu_check_table.py LOGDIR"""
import csv
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def test_summary(path):
    if not path.exists():
        return "tests: no result file (" + str(path) + ")", []
    passed, failed, skipped = 0, [], 0
    for case in ET.parse(path).getroot().iter("testcase"):
        if case.find("failure") is not None or case.get("status") == "fail":
            failed.append(case.get("name"))
        elif case.find("skipped") is not None or case.get("status") == "notrun":
            skipped += 1
        else:
            passed += 1
    return f"tests: {passed} passed, {len(failed)} failed, {skipped} skipped", failed


def benchmarks(path):
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text())["benchmarks"]
    except (ValueError, KeyError):
        return []


def microseconds(b):
    return b["real_time"] * {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b["time_unit"]]


def kernel_rows(path):
    rows = []
    for b in benchmarks(path):
        if b.get("error_occurred"):
            rows.append((b["name"], "error", b.get("error_message", "")[:40], ""))
            continue
        gbs = f"{b['GB/s']:.0f}" if "GB/s" in b else ""
        gflops = f"{b['GFLOP/s']:.0f}" if "GFLOP/s" in b else ""
        rows.append((b["name"], f"{microseconds(b):.1f}", gbs, gflops))
    return rows or [("(no kernel benchmark results)", "", "", "")]


def pytorch_rates(path):
    rates = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                rates[parts[0]] = float(parts[1])
    return rates


def main():
    logdir = Path(sys.argv[1])
    print("\n== raisin gpu-check ==")
    machine = logdir / "machine.txt"
    if machine.exists():
        print(machine.read_text().splitlines()[0])
    summary, failed = test_summary(logdir / "tests.xml")
    print(summary)
    for name in failed[:20]:
        print("  FAILED", name)

    rows = kernel_rows(logdir / "cuda_bench.json")
    width = max(len(r[0]) for r in rows)
    print(f"\n{'kernel':<{width}}  {'us/launch':>10}  {'GB/s':>7}  {'GFLOP/s':>8}")
    for name, us, gbs, gflops in rows:
        print(f"{name:<{width}}  {us:>10}  {gbs:>7}  {gflops:>8}")

    train = {}
    for b in benchmarks(logdir / "train_bench.json"):
        if not b.get("error_occurred") and "images/s" in b:
            train[b["name"].split("/")[1]] = (b["images/s"], microseconds(b))
    eager, compiled = pytorch_rates(logdir / "pytorch_eager.txt"), pytorch_rates(logdir / "pytorch_compile.txt")
    print(f"\n{'training, batch 128, fp32':<26}  {'raisin img/s':>12}  {'torch eager':>11}  {'torch.compile':>13}")
    for model, key in (("lenet5", "lenet5"), ("resnet20", "resnet20"), ("vgg-small", "vgg_small")):
        ours = f"{train[key][0]:.0f}" if key in train else "-"
        e = f"{eager[model]:.0f}" if model in eager else "-"
        c = f"{compiled[model]:.0f}" if model in compiled else "-"
        print(f"{model:<26}  {ours:>12}  {e:>11}  {c:>13}")
    if "resnet20_rais" in train and "resnet20_uniform_iid" in train:
        rais, iid = train["resnet20_rais"][1], train["resnet20_uniform_iid"][1]
        print(f"RAIS overhead per resnet20 step (rais vs uniform-iid): {100 * (rais / iid - 1):+.1f}% "
              f"({rais / 1e3:.2f} vs {iid / 1e3:.2f} ms)")

    for folder, what in (("mnist-lenet5", "lenet5 on MNIST"), ("cifar10-resnet20", "resnet20 on CIFAR-10")):
        epochs = logdir / folder / "epochs.csv"
        rows = list(csv.DictReader(epochs.open())) if epochs.exists() else []
        if rows:
            last = rows[-1]
            print(f"raisin train --device cuda, {what}, {float(last['epoch']):.0f} epochs: test accuracy "
                  f"{100 * (1 - float(last['test_error'])):.2f}%, {float(last['images_per_second']):.0f} img/s, "
                  f"{float(last['wall_seconds']):.1f} s of training")
        else:
            print(f"raisin train --device cuda, {what}: no epochs.csv (see its log)")


if __name__ == "__main__":
    main()
