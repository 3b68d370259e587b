#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/: a few small valid inputs
and a few malformed ones per target (Python's standard library only). The committed corpus is this
script's output; run it again after changing an input format:

    python3 tests/fuzz/make_corpus.py [--c10j PATH]

--c10j names the real test.c10j whose shared JPEG header and first records seed the c10j target
(default: ../shared/data/cifar10-jpeg75/test.c10j beside the repository); without it that corpus is
left as it is.
"""
import argparse
import gzip
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def fresh(target):
    shutil.rmtree(os.path.join(CORPUS, target), ignore_errors=True)


# ---- idx: byte 0 = classes - 1, bytes 1..4 = images length (u32 LE), images file, labels file ----

def idx_images(count, rows, cols, magic=0x803):
    pixels = bytes((7 * i + 3) % 256 for i in range(count * rows * cols))
    return struct.pack(">IIII", magic, count, rows, cols) + pixels


def idx_labels(labels, magic=0x801, count=None):
    return struct.pack(">II", magic, len(labels) if count is None else count) + bytes(labels)


def idx_input(images, labels, classes=10):
    return bytes([classes - 1]) + struct.pack("<I", len(images)) + images + labels


def make_idx():
    fresh("idx")
    images, labels = idx_images(3, 4, 5), idx_labels([0, 9, 4])
    gz = lambda b: gzip.compress(b, mtime=0)
    write("idx", "plain", idx_input(images, labels))
    write("idx", "gzip", idx_input(gz(images), gz(labels)))
    write("idx", "gzip_images_plain_labels", idx_input(gz(images), labels, classes=256))
    write("idx", "two_gzip_members", idx_input(gz(images[:10]) + gz(images[10:]), labels))
    write("idx", "bad_magic", idx_input(idx_images(3, 4, 5, magic=0x801), labels))
    write("idx", "truncated_images", idx_input(images[:-7], labels))
    write("idx", "truncated_gzip", idx_input(gz(images)[:-9], labels))
    write("idx", "trailing_bytes", idx_input(images + b"\0\0", labels))
    write("idx", "count_mismatch", idx_input(images, idx_labels([1, 2])))
    write("idx", "label_out_of_range", idx_input(images, labels, classes=5))
    write("idx", "huge_count", idx_input(struct.pack(">IIII", 0x803, 0xFFFFFFFF, 28, 28), labels))


# ---- cifar_binary: one batch file ----

def cifar_record(label, seed):
    return bytes([label]) + bytes((seed * 31 + i) % 256 for i in range(3 * 32 * 32))


def make_cifar_binary():
    fresh("cifar_binary")
    two = cifar_record(3, 1) + cifar_record(9, 2)
    write("cifar_binary", "two_records", two)
    write("cifar_binary", "one_record", cifar_record(0, 5))
    write("cifar_binary", "label_out_of_range", cifar_record(10, 3))
    write("cifar_binary", "truncated", two[:-100])
    write("cifar_binary", "empty", b"")


# ---- c10j: one container, from the real file's shared header and first records ----

def make_c10j(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, version, count, hlen = struct.unpack_from("<4sIII", data, 0)
    assert magic == b"C10J" and version == 1, path
    header = data[16:16 + hlen]
    records, pos = [], 16 + hlen
    for _ in range(3):
        blen = struct.unpack_from("<H", data, pos + 1)[0]
        records.append(data[pos:pos + 3 + blen])
        pos += 3 + blen

    def container(recs, count=None, version=1, head=header):
        n = len(recs) if count is None else count
        return b"C10J" + struct.pack("<III", version, n, len(head)) + head + b"".join(recs)

    fresh("c10j")
    write("c10j", "three_records", container(records))
    write("c10j", "one_record", container(records[:1]))
    corrupt = bytearray(records[1])
    for k in range(10, len(corrupt) - 2, 17):
        corrupt[k] ^= 0x5A
    write("c10j", "corrupt_scan", container([records[0], bytes(corrupt)]))
    write("c10j", "count_too_large", container(records[:2], count=3))
    write("c10j", "bad_version", container(records[:1], version=2))
    write("c10j", "trailing_bytes", container(records[:1]) + b"\xff")
    sof = header.index(b"\xff\xc0")
    wide = bytearray(header)
    wide[sof + 7:sof + 9] = struct.pack(">H", 48)  # width 48: a wrong image size
    write("c10j", "wrong_width", container(records[:1], head=bytes(wide)))


# ---- safetensors ----

def safetensors(tensors, metadata=None, pad=True):
    """tensors: [(name, dtype, shape, bytes)] laid out in order."""
    header, offset, data = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def raw_header(text, data=b""):
    return struct.pack("<Q", len(text)) + text + data


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


def make_safetensors():
    fresh("safetensors")
    write("safetensors", "all_dtypes", safetensors([
        ("weight", "F32", [2, 3], f32(*range(6))),
        ("index", "I32", [2], struct.pack("<2i", -1, 7)),
        ("steps", "I64", [], struct.pack("<q", 12)),
        ("mask", "U8", [4], b"\x00\x01\x02\x03"),
        ("empty", "F32", [0, 5], b""),
    ], metadata={"format": "pt", "note": "caf\u00e9 \u2713"}))
    write("safetensors", "empty_object", raw_header(b"{}      "))
    write("safetensors", "escapes", raw_header(
        b'{"__metadata__":{"k\\u00e9\\ud83d\\ude00":"a\\"b\\\\c\\n"},"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
        b"\x07"))
    write("safetensors", "overlap", raw_header(
        b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}',
        b"abc"))
    write("safetensors", "gap", raw_header(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"ab"))
    write("safetensors", "size_mismatch", raw_header(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', b"abcd"))
    write("safetensors", "huge_shape", raw_header(
        b'{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}', b"abcd"))
    write("safetensors", "bad_dtype", raw_header(b'{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}', b"ab"))
    write("safetensors", "deep", raw_header(b'{"__metadata__":' + b"[" * 20 + b"]" * 20 + b"}"))
    write("safetensors", "header_too_long", struct.pack("<Q", 1 << 40) + b"{}")
    write("safetensors", "truncated_json", raw_header(b'{"a":{"dtype":"U8","sha'))


# ---- checkpoint: the tiny model of checkpoint_fuzz.cpp (conv 1->2 1x1 without bias, bn 2, fc 2->2) ----

def make_checkpoint():
    fresh("checkpoint")
    params = [("conv.weight", [2, 1, 1, 1]), ("bn.weight", [2]), ("bn.bias", [2]), ("fc.weight", [2, 2]),
              ("fc.bias", [2])]
    buffers = [("bn.running_mean", "F32", [2], f32(0.5, -0.5)), ("bn.running_var", "F32", [2], f32(1, 2)),
               ("bn.num_batches_tracked", "I64", [], struct.pack("<q", 3))]

    def count(shape):
        n = 1
        for d in shape:
            n *= d
        return n

    model = [(name, "F32", shape, f32(*[0.25 * k for k in range(count(shape))])) for name, shape in params]
    state = model[:3] + buffers + model[3:]
    momentum = [("optimizer.momentum." + name, "F32", shape, f32(*[0.125] * count(shape))) for name, shape in params]
    sampler = [("optimizer.sampler.last_norm", "F32", [3], f32(1, 2, 3)),
               ("optimizer.sampler.last_seen", "I64", [3], struct.pack("<3q", -1, 0, 5))]
    meta = {"format": "raisin-checkpoint-1", "model": "tiny", "sampler.c": "0.10000000000000001,2,-3e-5,4"}
    write("checkpoint", "full", safetensors(state + momentum + sampler, metadata=meta))
    write("checkpoint", "model_only", safetensors(state, metadata={"format": "raisin-checkpoint-1"}))
    write("checkpoint", "missing_tensor", safetensors(state[1:] + momentum, metadata=meta))
    write("checkpoint", "wrong_shape", safetensors(
        [("conv.weight", "F32", [1, 2, 1, 1], f32(1, 2))] + state[1:] + momentum, metadata=meta))
    write("checkpoint", "future_format", safetensors(state, metadata={"format": "raisin-checkpoint-2"}))
    write("checkpoint", "bad_sampler_real", safetensors(
        state + momentum, metadata={"format": "raisin-checkpoint-1", "sampler.c": "1,,x"}))
    write("checkpoint", "sampler_tensor_2d", safetensors(
        state + momentum + [("optimizer.sampler.p", "F32", [1, 2], f32(0.5, 0.5))], metadata=meta))


# ---- cli_flags: the arguments of `raisin train`, separated by NUL bytes ----

def make_cli_flags():
    fresh("cli_flags")
    seeds = {
        "typical": ["--data", "mnist", "--model", "lenet5", "--epochs", "2.5", "--batch", "64", "--nesterov"],
        "inline_values": ["--lr=0.1", "--momentum=0", "--flip=true", "--tf32=false", "--seed=18446744073709551615"],
        "rais": ["--sampler", "rais", "--rais-alpha", "1e-2", "--rais-records", "8", "--rais-trace", "/tmp/x"],
        "bad_number": ["--batch", "12x", "--epochs", "nan", "--threads", "-1", "--lr", "1e999"],
        "unknown_flag": ["--no-such-flag", "3"],
        "missing_value": ["--epochs"],
        "switch_with_value": ["--nesterov=yes"],
        "positional": ["mnist"],
        "empty_values": ["--data=", "--epochs", "", "--"],
    }
    for name, args in seeds.items():
        write("cli_flags", name, b"\0".join(a.encode() for a in args))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_c10j = os.path.join(HERE, "..", "..", "..", "shared", "data", "cifar10-jpeg75", "test.c10j")
    parser.add_argument("--c10j", default=default_c10j, help="the real test.c10j (seeds the c10j corpus)")
    args = parser.parse_args()
    make_idx()
    make_cifar_binary()
    if os.path.exists(args.c10j):
        make_c10j(args.c10j)
    else:
        print("c10j corpus left as it is: %s not found" % args.c10j)
    make_safetensors()
    make_checkpoint()
    make_cli_flags()


if __name__ == "__main__":
    main()
