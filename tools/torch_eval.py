#!/usr/bin/python3
"""Evaluates a raisin checkpoint in PyTorch: loads it into the model's PyTorch twin
(tools/torch_models.py, strict=True, "optimizer.*" entries ignored) and prints test loss and accuracy.

    /usr/bin/python3 tools/torch_eval.py --checkpoint runs/x/model.safetensors --model lenet5 \
        --data fashion-mnist [--data-dir DIR]

Inputs are normalised as raisin does: per channel, (pixel/255 - mean) / std with the mean and the
population std over all pixels of the TRAINING split. Data: mnist and fashion-mnist as IDX (gzip or
plain); cifar10 as the C10J container (train.c10j, test.c10j; decoded with PIL).
"""

import argparse
import gzip
import io
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import torch_models  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "cifar10": "cifar10-jpeg75"}


def search_dirs(data):
    folder = FOLDERS[data]
    dirs = [os.path.join(REPO, ".data", folder), os.path.join(REPO, "..", "shared", "data", folder)]
    if os.environ.get("RAISIN_DATA_DIR"):
        dirs.insert(0, os.path.join(os.environ["RAISIN_DATA_DIR"], folder))
    if data == "fashion-mnist":
        dirs.append("/usr/share/datasets/fashion-mnist")  # apt-get install dataset-fashion-mnist
    return dirs


def read_bytes(path):
    with open(path, "rb") as f:
        blob = f.read()
    return gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob


def read_idx(directory, prefix):
    """(images [N, 1, H, W] uint8, labels [N] int64) from <prefix>-images-idx3-ubyte[.gz] and labels."""
    def find(kind):
        for name in (f"{prefix}-{kind}", f"{prefix}-{kind}.gz"):
            if os.path.exists(os.path.join(directory, name)):
                return os.path.join(directory, name)
        raise SystemExit(f"torch_eval: no {prefix}-{kind}[.gz] in {directory}")
    images, labels = read_bytes(find("images-idx3-ubyte")), read_bytes(find("labels-idx1-ubyte"))
    magic, n, rows, cols = struct.unpack(">IIII", images[:16])
    magic_l, n_l = struct.unpack(">II", labels[:8])
    if magic != 0x803 or magic_l != 0x801 or n != n_l or len(images) != 16 + n * rows * cols or len(labels) != 8 + n:
        raise SystemExit(f"torch_eval: malformed IDX files {prefix}-* in {directory}")
    x = np.frombuffer(images, np.uint8, offset=16).reshape(n, 1, rows, cols)
    return x, np.frombuffer(labels, np.uint8, offset=8).astype(np.int64)


def read_c10j(path):
    """(images [N, 3, 32, 32] uint8, labels [N] int64) from a C10J container."""
    from PIL import Image  # python3-pil
    with open(path, "rb") as f:
        blob = f.read()
    magic, version, count, hlen = struct.unpack("<4sIII", blob[:16])
    if magic != b"C10J" or version != 1:
        raise SystemExit(f"torch_eval: {path} is not a C10J v1 file")
    header, pos = blob[16:16 + hlen], 16 + hlen
    images, labels = np.empty((count, 3, 32, 32), np.uint8), np.empty(count, np.int64)
    for i in range(count):
        label, blen = struct.unpack("<BH", blob[pos:pos + 3])
        body = blob[pos + 3:pos + 3 + blen]
        pos += 3 + blen
        images[i] = np.asarray(Image.open(io.BytesIO(header + body)).convert("RGB")).transpose(2, 0, 1)
        labels[i] = label
    if pos != len(blob):
        raise SystemExit(f"torch_eval: {path}: {len(blob) - pos} bytes after record {count}")
    return images, labels


def load(data, data_dir):
    """(train images, test images, test labels), searching the usual places unless data_dir is given."""
    dirs = [data_dir] if data_dir else search_dirs(data)
    for d in dirs:
        if data == "cifar10" and os.path.exists(os.path.join(d, "test.c10j")):
            train, _ = read_c10j(os.path.join(d, "train.c10j"))
            return (train,) + read_c10j(os.path.join(d, "test.c10j"))
        if data != "cifar10" and any(os.path.exists(os.path.join(d, "t10k-images-idx3-ubyte" + s)) for s in ("", ".gz")):
            train, _ = read_idx(d, "train")
            return (train,) + read_idx(d, "t10k")
    raise SystemExit(f"torch_eval: no {data} files in any of: {', '.join(dirs)}")


def channel_statistics(images):
    """Per-channel mean and population std of images/255, from exact per-channel pixel histograms."""
    values = np.arange(256, dtype=np.float64) / 255.0
    mean, std = [], []
    for ch in range(images.shape[1]):
        p = np.bincount(images[:, ch].ravel(), minlength=256) / (images.shape[0] * images[0, ch].size)
        m = float((p * values).sum())
        mean.append(m)
        std.append(float(np.sqrt((p * (values - m) ** 2).sum())))
    return np.array(mean), np.array(std)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--model", help="default: the checkpoint's 'model' metadata")
    parser.add_argument("--data", choices=sorted(FOLDERS), help="default: the checkpoint's 'data' metadata")
    parser.add_argument("--data-dir")
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()

    tensors, metadata = safetensors_io.read(args.checkpoint)
    model_name = args.model or metadata.get("model")
    if not model_name:
        raise SystemExit("torch_eval: --model is needed (the checkpoint's metadata names none)")
    data = args.data or metadata.get("data")
    if data not in FOLDERS:
        raise SystemExit(f"torch_eval: --data must be one of {', '.join(sorted(FOLDERS))} (got {data!r})")
    train, images, labels = load(data, args.data_dir)
    mean, std = channel_statistics(train)
    classes = int(labels.max()) + 1
    n, c, h, w = images.shape

    model = torch_models.make_model(model_name, c, h, w, classes)
    model.load_state_dict(torch_models.raisin_state_dict(tensors), strict=True)
    model.eval()
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, c, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, c, 1, 1)
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, n, args.batch_size):
            x = (torch.from_numpy(images[start:start + args.batch_size].astype(np.float32)) / 255.0 - mean_t) / std_t
            y = torch.from_numpy(labels[start:start + args.batch_size])
            logits = model(x)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    print(f"{model_name} on {data} test ({n} images, mean {np.round(mean, 4).tolist()}, "
          f"std {np.round(std, 4).tolist()}): loss {total_loss / n:.4f}, accuracy {100.0 * correct / n:.2f}%")


if __name__ == "__main__":
    main()
