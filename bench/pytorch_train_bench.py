"""PyTorch's side of bench/compare_pytorch_cpu.sh: training images/s of the same models (tools/torch_models.py),
batch and data shape as bench/train_bench.cpp, fp32 on the CPU with a fixed thread count.

    /usr/bin/python3 bench/pytorch_train_bench.py --threads 2 [--models lenet5,resnet20] [--seconds 10]

Prints one line per model: "<model> <images/s>". Uses Debian's python3-torch (1.13).
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import torch_models  # noqa: E402

SHAPES = {"lenet5": (1, 28), "mlp": (1, 28), "resnet20": (3, 32), "vgg-small": (3, 32)}


def images_per_second(name, batch, seconds):
    channels, side = SHAPES[name]
    model = torch_models.make_model(name, channels, side, side, 10)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, channels, side, side)
    y = torch.randint(0, 10, (batch,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(3):  # warm-up
        step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    return steps * batch / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="lenet5,resnet20")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name in args.models.split(","):
        print(f"{name} {images_per_second(name, args.batch, args.seconds):.1f}", flush=True)


if __name__ == "__main__":
    main()
