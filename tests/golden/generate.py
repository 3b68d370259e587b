#!/usr/bin/python3
"""Writes raisin's golden fixtures, the PyTorch results that the C++ tests compare against.

Run from the repository root with Debian's Python (python3-torch, python3-numpy):

    /usr/bin/python3 tests/golden/generate.py

It is not run at test time: its outputs are checked into tests/golden/ so that the test suite needs no
Python. Rerunning it with the same torch version reproduces the files byte for byte.

Outputs (safetensors, written by hand below, since the `safetensors` package may not be installed):

  safetensors_python.safetensors  a tiny file exercising the format itself (several dtypes, a 0-d
                                  scalar, an empty tensor, escaped and non-ASCII metadata, data stored
                                  in a different order from the header) for the reader's tests.
  lenet5.safetensors              LeNet-5, one training forward/backward pass on a batch of 4.
  resnet_small.safetensors        a two-block ResNet with batch norm, one training forward/backward pass.

Each model fixture holds:
  input, labels (I32), weights            the batch and its per-example weights w in [0.5, 2]
  param.<name>                            model.state_dict() before the pass (num_batches_tracked as I64)
  logits                                  train-mode forward
  loss                                    0-d: mean_i(w_i * cross_entropy_i) = (1/B) sum_i w_i l_i
  grad.<name>                             every parameter's .grad after loss.backward()
  state_after.<name>                      every buffer after the train-mode forward (running statistics
                                          updated with momentum 0.1, unbiased batch variance)
  eval_logits                             model.eval() forward on the same input after that update
                                          (no optimizer step: the weights are unchanged)

Precision: parameters and inputs are drawn in float32, then the model runs in float64; every stored
float tensor is rounded to float32 at the end. The stored parameters are therefore exactly the ones the
float64 computation used, and the stored results are the exact answers for them up to float32 rounding.
"""

import collections
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))

DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32", np.dtype(np.int64): "I64", np.dtype(np.uint8): "U8"}


def write_safetensors(path, tensors, metadata=None, data_order=None):
    """Writes an ordered dict name -> numpy array as safetensors.

    The header lists tensors in dict order; the data buffer holds them in `data_order` (default: the same
    order). The header is padded with spaces to a multiple of 8 bytes, as the reference writer does.
    """
    order = list(data_order) if data_order is not None else list(tensors)
    assert sorted(order) == sorted(tensors)
    offsets, blobs, position = {}, [], 0
    for name in order:
        array = tensors[name]
        blob = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        offsets[name] = (position, position + len(blob))
        blobs.append(blob)
        position += len(blob)
    header = collections.OrderedDict()
    if metadata:
        header["__metadata__"] = collections.OrderedDict(metadata)
    for name, array in tensors.items():
        header[name] = collections.OrderedDict(
            [("dtype", DTYPES[array.dtype]), ("shape", list(array.shape)), ("data_offsets", list(offsets[name]))])
    text = json.dumps(header).encode("ascii")  # ensure_ascii: non-ASCII metadata becomes \\uXXXX escapes
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)
    print(f"wrote {os.path.relpath(path)}: {os.path.getsize(path)} bytes, {len(tensors)} tensors")


def to_numpy(t):
    t = t.detach()
    if t.dtype == torch.float64 or t.dtype == torch.float32:
        return t.to(torch.float32).numpy().copy()
    if t.dtype == torch.int64:
        return t.numpy().astype(np.int64)
    raise TypeError(f"unexpected dtype {t.dtype}")


# ---------------------------------------------------------------- the format fixture

def generate_format_fixture():
    tensors = collections.OrderedDict()
    tensors["matrix"] = np.array([[1.5, -2.0, 3.25], [0.0, 1e-3, -7.0]], dtype=np.float32)
    tensors["ids"] = np.array([3, -1, 2147483647, -2147483648], dtype=np.int32)
    tensors["step"] = np.array(1234567890123, dtype=np.int64)  # 0-d scalar, shape []
    tensors["bytes"] = np.array([0, 128, 255], dtype=np.uint8)
    tensors["empty"] = np.zeros((0, 2), dtype=np.float32)
    metadata = [("format", "pt"), ("note", "quote \" backslash \\ tab\t newline\n"), ("unicode", "caf\u00e9 \U0001F600")]
    write_safetensors(os.path.join(HERE, "safetensors_python.safetensors"), tensors, metadata,
                      data_order=["bytes", "step", "empty", "matrix", "ids"])


# ---------------------------------------------------------------- models

class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNetSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(BasicBlock(8, 8, 1))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


def randomise_batch_norm(model):
    """Moves every BatchNorm's affine parameters and running statistics away from their defaults."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)


# ---------------------------------------------------------------- model fixtures

def generate_model_fixture(path, model, input_shape, seed):
    torch.manual_seed(seed)  # parameters are drawn after this, in float32
    model = model()
    randomise_batch_norm(model)
    x = torch.randn(*input_shape, dtype=torch.float32)
    labels = torch.randint(0, 10, (input_shape[0],), dtype=torch.int64)
    weights = torch.empty(input_shape[0], dtype=torch.float32).uniform_(0.5, 2.0)

    tensors = collections.OrderedDict()
    tensors["input"] = to_numpy(x)
    tensors["labels"] = labels.numpy().astype(np.int32)
    tensors["weights"] = to_numpy(weights)
    for name, value in model.state_dict().items():
        tensors["param." + name] = to_numpy(value)

    model = model.double()  # float32 -> float64 is exact
    model.train()
    model.zero_grad()
    logits = model(x.double())
    per_example = F.cross_entropy(logits, labels, reduction="none")
    loss = (weights.double() * per_example).mean()
    loss.backward()

    tensors["logits"] = to_numpy(logits)
    tensors["loss"] = to_numpy(loss)
    for name, p in model.named_parameters():
        tensors["grad." + name] = to_numpy(p.grad)
    buffer_names = {name for name, _ in model.named_buffers()}
    for name, value in model.state_dict().items():
        if name in buffer_names:  # parameters are unchanged by a forward pass
            tensors["state_after." + name] = to_numpy(value)

    model.eval()
    with torch.no_grad():
        tensors["eval_logits"] = to_numpy(model(x.double()))

    metadata = [
        ("generator", "tests/golden/generate.py"),
        ("torch", torch.__version__),
        ("precision", "float32 parameters and inputs, float64 computation, results rounded to float32"),
        ("loss", "mean_i(weights_i * cross_entropy(logits_i, labels_i))"),
        ("seed", str(seed)),
    ]
    write_safetensors(path, tensors, metadata)


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    generate_format_fixture()
    generate_model_fixture(os.path.join(HERE, "lenet5.safetensors"), LeNet5, (4, 1, 28, 28), seed=5)
    generate_model_fixture(os.path.join(HERE, "resnet_small.safetensors"), ResNetSmall, (4, 3, 16, 16), seed=20)


if __name__ == "__main__":
    main()
