"""PyTorch's side of raisin's training benchmarks: training images/s of the same models (tools/torch_models.py),
batch and data shape as bench/train_bench.cpp (CPU) and bench/cuda_train_bench.cpp (GPU), fp32.

    /usr/bin/python3 bench/pytorch_train_bench.py --threads 2 [--models lenet5,resnet20] [--seconds 10]
    python3 bench/pytorch_train_bench.py --device cuda [--compile]     # on a GPU host (PyTorch with CUDA)

Prints one line per model: "<model> <images/s>". On the CPU, Debian's python3-torch (1.13); on a GPU,
eager mode by default, torch.compile with --compile. TF32 stays off (PyTorch's default for matmul; set
explicitly for convolutions), as in raisin.
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


def images_per_second(name, batch, seconds, device, compile_model):
    channels, side = SHAPES[name]
    model = torch_models.make_model(name, channels, side, side, 10).to(device)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, channels, side, side, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    forward = torch.compile(model) if compile_model else model

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(forward(x), y).backward()
        optimizer.step()

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(20 if device == "cuda" else 3):  # warm-up (compilation, cuDNN autotuning, allocator)
        step()
    sync()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10 if device == "cuda" else 1):
            step()
            steps += 1
        sync()
    return steps * batch / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="lenet5,resnet20")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (GPU baseline)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    for name in args.models.split(","):
        rate = images_per_second(name, args.batch, args.seconds, args.device, args.compile)
        print(f"{name} {rate:.1f}", flush=True)


if __name__ == "__main__":
    main()
