"""A minimal safetensors reader and writer in pure Python (json, struct, numpy; torch optional).

The `safetensors` package is not needed. Layout: an 8-byte little-endian header length N, N bytes of
JSON ({"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}}, padded with spaces), then
the data buffer, which the tensors must tile exactly. raisin's checkpoints (engine/checkpoint.h) are
such files.

    tensors, metadata = read(path)            # name -> numpy array, in header order; dict of str
    state = to_torch(tensors)                 # name -> torch.Tensor
    write(path, tensors, metadata)            # numpy arrays or torch tensors; atomic (tmp + rename)
"""

import json
import os
import struct

import numpy as np

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


class SafetensorsError(ValueError):
    pass


def read(path):
    """Returns (OrderedDict name -> numpy array, dict metadata); raises SafetensorsError on a bad file."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SafetensorsError(f"{path}: {len(blob)} bytes, too short for the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise SafetensorsError(f"{path}: header length {n} exceeds the file ({len(blob)} bytes)")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    data = memoryview(blob)[8 + n:]
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{path}: __metadata__ must map strings to strings")
    tensors, spans = {}, []
    for name, info in header.items():
        try:
            dtype = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
            shape = [int(s) for s in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{path}: tensor '{name}' has a bad entry {info!r}") from None
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if min(shape, default=0) < 0 or not 0 <= begin <= end <= len(data) or end - begin != count * dtype.itemsize:
            raise SafetensorsError(f"{path}: tensor '{name}' {info['dtype']} {shape} has offsets [{begin}, {end}] "
                                   f"that do not fit its size or the {len(data)}-byte buffer")
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
        spans.append((begin, end, name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise SafetensorsError(f"{path}: tensor '{name}' starts at {begin}, expected {position} (gap or overlap)")
        position = end
    if position != len(data):
        raise SafetensorsError(f"{path}: {len(data) - position} bytes after the last tensor")
    return tensors, metadata


def to_torch(tensors):
    import torch
    return {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in tensors.items()}


def write(path, tensors, metadata=None):
    """Writes name -> numpy array or torch tensor, in the given order, through path + '.tmp' and a rename."""
    header, blobs, position = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, value in tensors.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        array = np.ascontiguousarray(value)
        if array.dtype not in NAMES:
            raise SafetensorsError(f"{path}: tensor '{name}' has unsupported dtype {array.dtype}")
        blob = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [position, position + len(blob)]}
        blobs.append(blob)
        position += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
