#!/usr/bin/python3
"""Writes the fixtures that tie raisin's built-in models (models/models.cpp) to their PyTorch twins
(tools/torch_models.py). Run from the repository root with Debian's Python (python3-torch, numpy):

    /usr/bin/python3 tests/golden/generate_model_names.py

Not run at test time; deterministic (rerunning reproduces both files byte for byte).

model_state_names.txt
    For each configuration "model@CxHxW" (10 classes), every state_dict() entry of the PyTorch twin in
    order, one per line: "config<TAB>name<TAB>dtype<TAB>shape", dtype F32 or I64, shape as "[6, 1, 5, 5]"
    ("[]" for the 0-d num_batches_tracked); then "# config parameters N" with PyTorch's parameter count.

model_forward.safetensors
    PyTorch's logits (computed in float64, stored as float32) of each configuration for a batch of 4,
    with every float state tensor and the input filled by fill_values() below, a splitmix64 sequence
    that the C++ test reproduces bit for bit, so no weights need to be stored:
      "<config>.eval_logits"   model.eval() forward (batch norm with the filled running statistics)
      "<config>.train_logits"  model.train() forward, for configurations without dropout and with batch norm
"""

import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import safetensors_io  # noqa: E402
import torch_models  # noqa: E402

CONFIGS = [("mlp", 1, 28, 28), ("lenet5", 1, 28, 28), ("lenet5", 3, 32, 32), ("resnet20", 3, 32, 32),
           ("vgg-small", 3, 32, 32)]
FORWARD = [("mlp", 1, 28, 28), ("lenet5", 3, 32, 32), ("resnet20", 3, 32, 32), ("vgg-small", 3, 32, 32)]
CLASSES = 10
BATCH = 4
DTYPE_NAMES = {torch.float32: "F32", torch.int64: "I64"}

MASK = (1 << 64) - 1


def splitmix64_uniform(seed, start, n):
    """u_k = splitmix64 output number start+k+1 from state `seed`, as (z >> 11) * 2^-53, in [0, 1)."""
    with np.errstate(over="ignore"):
        k = np.arange(start + 1, start + n + 1, dtype=np.uint64)
        z = np.uint64(seed) + k * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)


def value_range(name, shape):
    """[lo, hi) of a state tensor's filled values (the C++ test has the same rule)."""
    if name.endswith("running_var"):
        return 0.5, 1.5
    if name.endswith("running_mean"):
        return -0.2, 0.2
    if len(shape) >= 2:  # weights: variance 2 / fan_in, as Kaiming
        fan_in = int(np.prod(shape[1:]))
        b = float(np.sqrt(6.0 / fan_in))
        return -b, b
    if name.endswith(".weight"):  # batch-norm scale
        return 0.5, 1.5
    return -0.1, 0.1  # biases


def fill_values(state):
    """Fills every float tensor of `state` (in order) from one splitmix64 sequence with seed 2024."""
    position = 0
    with torch.no_grad():
        for name, t in state.items():
            if t.dtype != torch.float32:
                continue
            lo, hi = value_range(name, list(t.shape))
            u = splitmix64_uniform(2024, position, t.numel())
            position += t.numel()
            t.copy_(torch.from_numpy((lo + (hi - lo) * u).astype(np.float32)).reshape(t.shape))


def write_names():
    lines = []
    for name, c, h, w in CONFIGS:
        config = f"{name}@{c}x{h}x{w}"
        model = torch_models.make_model(name, c, h, w, CLASSES)
        for key, t in model.state_dict().items():
            shape = "[" + ", ".join(str(s) for s in t.shape) + "]"
            lines.append(f"{config}\t{key}\t{DTYPE_NAMES[t.dtype]}\t{shape}")
        lines.append(f"# {config} parameters {sum(p.numel() for p in model.parameters())}")
    path = os.path.join(HERE, "model_state_names.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {os.path.relpath(path)}: {len(lines)} lines")


def write_forward():
    tensors = {}
    for name, c, h, w in FORWARD:
        config = f"{name}@{c}x{h}x{w}"
        model = torch_models.make_model(name, c, h, w, CLASSES)
        fill_values(model.state_dict())
        x = torch.from_numpy((-1.0 + 2.0 * splitmix64_uniform(7, 0, BATCH * c * h * w)).astype(np.float32))
        x = x.reshape(BATCH, c, h, w).double()
        model = model.double()
        model.eval()
        with torch.no_grad():
            tensors[config + ".eval_logits"] = model(x).float().numpy()
        has_dropout = any(isinstance(m, torch.nn.Dropout) for m in model.modules())
        has_batchnorm = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        if has_batchnorm and not has_dropout:
            model.train()
            with torch.no_grad():
                tensors[config + ".train_logits"] = model(x).float().numpy()
    metadata = {"generator": "tests/golden/generate_model_names.py", "torch": torch.__version__,
                "precision": "float32 state and input from splitmix64, float64 computation, logits rounded to float32"}
    path = os.path.join(HERE, "model_forward.safetensors")
    safetensors_io.write(path, tensors, metadata)
    print(f"wrote {os.path.relpath(path)}: {os.path.getsize(path)} bytes, {len(tensors)} tensors")


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    write_names()
    write_forward()


if __name__ == "__main__":
    main()
