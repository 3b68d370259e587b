"""The short table that ends tools/gpu-check: test counts (and failures) from ctest's JUnit file; each CUDA
kernel benchmark's time per launch and achieved GB/s or GFLOP/s; training images/s and step time of raisin
and PyTorch (eager, compiled) on the same GPU; RAIS's overhead per step; the two `raisin compare` runs
(rais against uniform on Fashion-MNIST and CIFAR-10). Issue 6's targets are marked `met` or `MISSED`.
usage: python3 tools/gpu_check_table.py LOGDIR"""
import csv
import json
import math
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

    train, other_batches = {}, []
    for b in benchmarks(logdir / "train_bench.json"):
        if not b.get("error_occurred") and "images/s" in b:
            _, model, batch = b["name"].split("/")[:3]
            rate = (b["images/s"], 1e3 * int(batch) / b["images/s"])  # images/s, ms per step
            if batch == "128":
                train[model] = rate
            else:
                other_batches.append(f"{model} batch {batch}: {rate[0]:.0f} img/s, {rate[1]:.2f} ms/step")
    eager, compiled = pytorch_rates(logdir / "pytorch_eager.txt"), pytorch_rates(logdir / "pytorch_compile.txt")
    print(f"\n{'training, batch 128, fp32':<26}  {'raisin img/s':>12}  {'ms/step':>7}  {'torch eager':>11}  "
          f"{'torch.compile':>13}")
    for model, key in (("lenet5", "lenet5"), ("resnet20", "resnet20"), ("vgg-small", "vgg_small")):
        ours, ms = (f"{train[key][0]:.0f}", f"{train[key][1]:.2f}") if key in train else ("-", "-")
        e = f"{eager[model]:.0f}" if model in eager else "-"
        c = f"{compiled[model]:.0f}" if model in compiled else "-"
        print(f"{model:<26}  {ours:>12}  {ms:>7}  {e:>11}  {c:>13}")
    for line in other_batches:
        print(line)
    if "resnet20" in train and "resnet20" in eager:
        ours = train["resnet20"][0]
        line = (f"resnet20, raisin / torch eager: {ours / eager['resnet20']:.2f}x, "
                f"{mark(ours >= 1.5 * eager['resnet20'])} (>= 1.5x)")
        if "resnet20" in compiled:
            line += (f"; raisin / torch.compile: {ours / compiled['resnet20']:.2f}x, "
                     f"{mark(ours >= compiled['resnet20'])} (>= 1x)")
        print(line)
    for model in ("lenet5", "resnet20"):
        if model in train and model + "_no_graphs" in train:
            with_graphs, without = train[model][1], train[model + "_no_graphs"][1]
            print(f"CUDA graphs, {model} batch 128: {with_graphs:.3f} ms/step replayed, {without:.3f} launched "
                  f"kernel by kernel ({without / with_graphs:.2f}x)")
    if "resnet20_rais" in train and "resnet20_uniform_iid" in train:
        rais, iid = train["resnet20_rais"][1], train["resnet20_uniform_iid"][1]
        overhead = 100 * (rais / iid - 1)
        print(f"RAIS overhead per resnet20 step (rais vs uniform-iid): {overhead:+.1f}% ({rais:.3f} vs {iid:.3f} ms), "
              f"{mark(overhead <= 2)} (<= 2%)")
    else:
        print("RAIS overhead per resnet20 step: no resnet20_rais and resnet20_uniform_iid results "
              "(see train_bench.log)")

    print("\nraisin compare --device cuda, rais against uniform (same seed, schedule and epochs; training time):")
    for folder, what, target in (("compare-fashion-lenet5", "lenet5 on Fashion-MNIST", 1.4),
                                 ("compare-cifar10-resnet20", "resnet20 on CIFAR-10, crop + flip", 1.3)):
        print(f"{what}:")
        for line in compare_lines(logdir / folder, target, folder.replace("-", "_") + ".log"):
            print("  " + line)


def mark(met):
    return "met" if met else "MISSED"


def compare_lines(folder, speedup_target, log):
    """From a `raisin compare` folder: rais's speed-up to uniform's final training loss against the target,
    both final test accuracies (rais at most 0.3 points below uniform), uniform's length and speed."""
    summary = folder / "summary.csv"
    runs = {row["run"]: row for row in csv.DictReader(summary.open())} if summary.exists() else {}
    if "uniform" not in runs or "rais" not in runs:
        return [f"no uniform and rais results in {folder.name}/summary.csv (see {log})"]
    uniform, rais = runs["uniform"], runs["rais"]
    seconds = float(rais["loss_target_seconds"])  # nan: not reached
    if math.isnan(seconds):
        lines = [f"rais never reached uniform's final training loss, {mark(False)} (>= {speedup_target}x)"]
    else:
        speedup = float(uniform["loss_target_seconds"]) / seconds
        lines = [f"rais reaches uniform's final training loss {speedup:.2f}x sooner ({seconds:.1f} vs "
                 f"{float(uniform['loss_target_seconds']):.1f} s, {float(rais['loss_target_steps']):.0f} vs "
                 f"{float(uniform['loss_target_steps']):.0f} steps), {mark(speedup >= speedup_target)} "
                 f"(>= {speedup_target}x)"]
    ours, theirs = 100 * float(rais["final_test_accuracy"]), 100 * float(uniform["final_test_accuracy"])
    lines.append(f"test accuracy: rais {ours:.2f}%, uniform {theirs:.2f}% ({ours - theirs:+.2f} points), "
                 f"{mark(ours >= theirs - 0.3)} (rais >= uniform - 0.3)")
    epochs = folder / "uniform" / "epochs.csv"
    rows = list(csv.DictReader(epochs.open())) if epochs.exists() else []
    if rows:
        last = rows[-1]
        lines.append(f"uniform: {float(last['epoch']):.0f} epochs, {float(last['images_per_second']):.0f} img/s, "
                     f"{float(last['wall_seconds']):.1f} s of training")
    return lines


if __name__ == "__main__":
    main()
