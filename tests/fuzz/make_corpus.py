#!/usr/bin/python3
"""Regenerates the seed corpora in tests/fuzz/corpus/<target>/ (each file < 64 KiB).

Usage: make_corpus.py RVTEMPORAL_BINARY. Valid small blobs come from `rvtemporal blob init`,
.npy files from NumPy, plus the malformed cases the unit tests use. Reproducers of fuzz
findings live in the same directories under names starting with "crash-" and are kept.
"""
import io
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(here, "corpus")


def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < 65536, (target, name, len(data))
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def blobs(rvt):
    with tempfile.TemporaryDirectory() as tmp:  # removed after, with the blobs made in it
        return blobs_in(rvt, tmp)


def blobs_in(rvt, tmp):
    shapes = {
        "tiny_f32": ["--input-dim", "2", "--q-heads", "1", "--kv-heads", "1", "--head-dim", "2",
                     "--layers", "1", "--classes", "2"],
        "tiny_f16": ["--input-dim", "2", "--q-heads", "1", "--kv-heads", "1", "--head-dim", "2",
                     "--layers", "1", "--classes", "2", "--dtype", "f16"],
        "gqa_f32": ["--input-dim", "4", "--q-heads", "2", "--kv-heads", "1", "--head-dim", "2",
                    "--layers", "2", "--classes", "3"],
    }
    valid = {}
    for name, args in shapes.items():
        out = os.path.join(tmp, name + ".rvne")
        subprocess.run([rvt, "blob", "init", *args, "--out", out], check=True, stdout=subprocess.DEVNULL)
        valid[name] = open(out, "rb").read()
        put("fuzz_blob", name + ".rvne", valid[name])
    good = valid["tiny_f32"]

    def recrc(b):
        b = bytearray(b[:-4])
        return bytes(b) + struct.pack("<I", zlib.crc32(bytes(b)) & 0xFFFFFFFF)

    put("fuzz_blob", "empty", b"")
    put("fuzz_blob", "too_short", good[:27])
    put("fuzz_blob", "truncated", good[:40])
    put("fuzz_blob", "bad_magic", b"XXXX" + good[4:])
    put("fuzz_blob", "bad_version", good[:4] + b"\x02\x00" + good[6:])
    put("fuzz_blob", "length_mismatch", good[:20] + struct.pack("<I", 0xFFFFFFFF) + good[24:])
    put("fuzz_blob", "crc_mismatch", good[:-1] + bytes([good[-1] ^ 1]))
    hdr = lambda b, off, v: recrc(b[:off] + struct.pack("<H", v) + b[off + 2:])
    put("fuzz_blob", "zero_dim", hdr(good, 8, 0))
    put("fuzz_blob", "gqa", hdr(valid["gqa_f32"], 12, 3))
    put("fuzz_blob", "one_class", hdr(good, 18, 1))
    put("fuzz_blob", "huge_shape", hdr(hdr(good, 8, 65535), 14, 65535))
    put("fuzz_blob", "odd_payload", recrc(good[:20] + struct.pack("<I", len(good) - 29) + good[24:-5] + good[-4:]))
    nan = bytearray(good)
    nan[24:28] = struct.pack("<f", float("nan"))
    put("fuzz_blob", "nan_weight", recrc(bytes(nan)))
    inf = bytearray(valid["tiny_f16"])
    inf[24:26] = b"\x00\x7c"
    put("fuzz_blob", "inf_weight_f16", recrc(bytes(inf)))


def npy_bytes(arr, version=None):
    buf = io.BytesIO()
    if version is None:
        np.save(buf, arr)
    else:
        np.lib.format.write_array(buf, arr, version=version)
    return buf.getvalue()


def make_npy(header, data, version=1):
    h = header.encode("latin1")
    pre = 10 if version == 1 else 12
    pad = (-(pre + len(h) + 1)) % 64
    h = h + b" " * pad + b"\n"
    lenfield = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + lenfield + h + data


def f4(shape):
    return "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % shape


def npys():
    r = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    put("fuzz_npy", "f4_3d.npy", npy_bytes(r))
    put("fuzz_npy", "f8_2d.npy", npy_bytes(np.linspace(-1, 1, 6).reshape(2, 3)))
    put("fuzz_npy", "f2_1d.npy", npy_bytes(np.arange(5, dtype=np.float16)))
    put("fuzz_npy", "scalar.npy", npy_bytes(np.float32(3.5)))
    put("fuzz_npy", "empty_0x3.npy", npy_bytes(np.zeros((0, 3), np.float32)))
    put("fuzz_npy", "v2.npy", npy_bytes(r, (2, 0)))
    put("fuzz_npy", "v3.npy", npy_bytes(r, (3, 0)))
    put("fuzz_npy", "nan.npy", npy_bytes(np.array([np.nan, np.inf, -np.inf], np.float32)))
    put("fuzz_npy", "fortran_3d.npy", npy_bytes(np.asfortranarray(r)))
    put("fuzz_npy", "big_f8_fortran_2d.npy", npy_bytes(np.asfortranarray(r[0].astype(">f8"))))
    good = npy_bytes(r)
    put("fuzz_npy", "bad_magic", b"\x92" + good[1:])
    put("fuzz_npy", "zip", b"PK\x03\x04 a zip file")
    put("fuzz_npy", "trunc7", good[:7])
    put("fuzz_npy", "trunc100", good[:100])
    put("fuzz_npy", "version_4_0", good[:6] + b"\x04\x00" + good[8:])
    put("fuzz_npy", "hdr_len_ffff", good[:8] + b"\xff\xff" + good[10:])
    cases = [
        "{'descr': '<f4', 'fortran_order': False 'shape': (3,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'descr': '<f4'}",
        "{'descr': '<f4', 'fortran_order': false, 'shape': (3,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3.0,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': [3], }",
        "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }",
        "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
        "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (3,), }",
        "{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }",
        "(" * 200,
        "",
    ]
    data = np.arange(3, dtype=np.float32).tobytes()
    for i, c in enumerate(cases):
        put("fuzz_npy", "malformed_%02d" % i, make_npy(c, data))
    put("fuzz_npy", "overflow_shape", make_npy(f4("(1099511627776, 1099511627776, 4)"), data))
    put("fuzz_npy", "huge_dim", make_npy(f4("(18446744073709551616,)"), data))
    put("fuzz_npy", "huge_truncated", make_npy(f4("(1099511627776, 1024)"), data))
    put("fuzz_npy", "trailing", make_npy(f4("(2,)"), data))


def cli():
    seeds = {
        "seed_hex": "0x5EED", "seed_dec": "18446744073709551615", "seed_overflow": "18446744073709551616",
        "globals": "0,5,17", "globals_bad": "1,,2", "empty": "",
        "window": "--window\n-1", "seq_huge": "--seq\n99999999999999999999",
        "full": "--q-heads\n4\n--kv-heads\n2\n--dim\n8\n--window\n16\n--block\n4\n--globals\n0,3\n--seed\n0xff",
        "preset": "--preset\naether\n--block\n0", "preset_bad": "--preset\nnope",
        "gqa_bad": "--q-heads\n3\n--kv-heads\n2", "landmarks": "--landmarks\nmass\n--no-causal",
        "globals_long": "--globals\n1234567890123456789",
    }
    for name, text in seeds.items():
        put("fuzz_cli_numbers", name, text)


if __name__ == "__main__":
    blobs(sys.argv[1])
    npys()
    cli()
