"""PyTorch twins of raisin's built-in models (models/models.cpp): same modules, names, shapes and
order, so a raisin checkpoint loads with `model.load_state_dict(state, strict=True)` once the
"optimizer.*" entries are dropped (load_raisin_checkpoint below).

    model = make_model("lenet5", channels=1, height=28, width=28, classes=10)

Runs with Debian's python3-torch (1.13): /usr/bin/python3.
"""

import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402  (tools/safetensors_io.py)

MODEL_NAMES = ["lenet5", "mlp", "resnet20", "vgg-small"]  # sorted, as raisin's model_names()


class FeaturesClassifier(nn.Module):
    """features(x) -> flatten -> classifier (features is empty for the mlp)."""

    def __init__(self, features, classifier):
        super().__init__()
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(*classifier)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class ResidualBlock(nn.Module):
    """engine/layers.h ResidualBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), bias-free
    3x3 convolutions, shortcut = identity or downsample = (1x1 conv with stride, batch norm)."""

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
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class CifarResNet(nn.Module):
    """3x3 stem (16 channels), three stages of n blocks (16, 32, 64; stride 2 into stages 2 and 3),
    global average pool, fc. n = 3: resnet20."""

    def __init__(self, channels, classes, blocks_per_stage=3):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 16, 3, 1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for stage in range(3):
            width = 16 << stage
            blocks = []
            for b in range(blocks_per_stage):
                blocks.append(ResidualBlock(cin, width, 2 if (b == 0 and stage > 0) else 1))
                cin = width
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _mlp(c, h, w, k):
    return FeaturesClassifier([], [nn.Linear(c * h * w, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                                   nn.Linear(256, k)])


def _lenet5(c, h, w, k):
    if h != w or h not in (28, 32):
        raise ValueError(f"model lenet5 needs 28x28 or 32x32 images, got {h}x{w}")
    return FeaturesClassifier(
        [nn.Conv2d(c, 6, 5, padding=2 if h == 28 else 0), nn.ReLU(), nn.MaxPool2d(2),
         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)],
        [nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, k)])


def _resnet20(c, h, w, k):
    if h < 8 or w < 8:
        raise ValueError(f"model resnet20 needs images of at least 8x8, got {h}x{w}")
    return CifarResNet(c, k, 3)


def _vgg_small(c, h, w, k):
    if h % 8 or w % 8:
        raise ValueError(f"model vgg-small needs image sides divisible by 8, got {h}x{w}")
    return FeaturesClassifier(
        [nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
         nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)],
        [nn.Dropout(0.5), nn.Linear(128 * (h // 8) * (w // 8), 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, k)])


_BUILDERS = {"lenet5": _lenet5, "mlp": _mlp, "resnet20": _resnet20, "vgg-small": _vgg_small}


def make_model(name, channels, height, width, classes):
    """The PyTorch twin of raisin's make_model(name, {channels, height, width, classes}, seed), initialised
    the same way in distribution (Kaiming-normal weights, zero biases, batch norm 1 and 0), not in value."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown model '{name}': choose one of {', '.join(MODEL_NAMES)}")
    model = _BUILDERS[name](channels, height, width, classes)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, math.sqrt(2.0 / (p.numel() // p.shape[0])))
            elif pname.endswith(".bias"):
                p.zero_()
    return model


def raisin_state_dict(tensors):
    """The model entries of a raisin checkpoint (safetensors_io.read(path)[0]) as torch tensors."""
    return {k: torch.from_numpy(v.copy()) for k, v in tensors.items() if not k.startswith("optimizer.")}


def load_raisin_checkpoint(model, path):
    """Loads a raisin checkpoint into `model` with strict=True; returns the checkpoint's metadata."""
    tensors, metadata = safetensors_io.read(path)
    model.load_state_dict(raisin_state_dict(tensors), strict=True)
    return metadata
