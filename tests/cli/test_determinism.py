"""Determinism (issue 7): the same command writes byte-identical .npy and blob files across runs
and thread counts. Each test compares the report's XXH3-64 digest across runs AND hashes the
written bytes here (libxxhash through ctypes), so a digest that agrees with itself but does not
describe the file would fail too.
"""
import ctypes
import ctypes.util
import hashlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rvt_cli import *  # noqa: E402,F401,F403


def _load_xxh3():
    for name in (ctypes.util.find_library("xxhash"), "libxxhash.so.0", "libxxhash.so"):
        if not name:
            continue
        try:
            fn = ctypes.CDLL(name).XXH3_64bits
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_uint64
        fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        return fn
    return None


_XXH3 = _load_xxh3()


def read(path):
    with open(path, "rb") as f:
        return f.read()


class DeterminismCase(CliTestCase):
    def xxh3(self, data):
        """XXH3-64 of bytes as the tool prints it (16 hex digits)."""
        if _XXH3 is None:
            self.skipTest("libxxhash (XXH3_64bits) not loadable from Python")
        return "%016x" % _XXH3(data, len(data))

    def run_json_ok(self, *args):
        p, r = run_json(*args)
        self.assertExit(p, OK)
        return r["result"]

    def assertSameFiles(self, paths):
        """All files byte-identical (one sha256), returns the bytes of the first."""
        contents = [read(p) for p in paths]
        digests = {hashlib.sha256(c).hexdigest() for c in contents}
        self.assertEqual(len(digests), 1, f"files differ: {paths}")
        return contents[0]

    def outputs(self, command, base_args, variants, name):
        """Runs `command base_args variant --out F_i` for each variant; checks that the report
        digests agree, that each is the XXH3 of the values in its file, and that the files are
        byte-identical. Returns the common digest."""
        paths, digests = [], []
        for i, extra in enumerate(variants):
            out = self.path(f"{name}-{i}.npy")
            res = self.run_json_ok(command, *base_args, *extra, "--out", out)
            self.assertEqual(res["output"]["path"], out)
            a = np.load(out)
            self.assertEqual(a.dtype, np.float32)
            self.assertTrue(a.flags["C_CONTIGUOUS"])
            # The digest is of the written values (raw little-endian f32, C order).
            self.assertEqual(res["output"]["xxh3"], self.xxh3(a.astype("<f4").tobytes()), f"{name} {extra}")
            self.assertEqual(res["output"]["stats"]["count"], a.size)
            paths.append(out)
            digests.append(res["output"]["xxh3"])
        self.assertEqual(len(set(digests)), 1, f"{name}: digests differ across {variants}: {digests}")
        self.assertSameFiles(paths)
        return digests[0]


class TestBlobInit(DeterminismCase):
    def test_blob_init_twice_gives_identical_files(self):
        for dtype, extra in (("f32", ()), ("f16", ()), ("f32", ("--seed", "7", "--layers", "3", "--kv-heads", "2")),
                             ("f16", ("--seed", "7", "--input-dim", "24"))):
            with self.subTest(dtype=dtype, extra=extra):
                paths, digests = [], []
                for i in range(2):
                    out = self.path(f"{dtype}-{len(extra)}-{i}.rvne")
                    res = self.run_json_ok("blob", "init", "--out", out, "--dtype", dtype, *extra)
                    data = read(out)
                    self.assertEqual(res["file_bytes"], len(data))
                    # init's digest, inspect's digest and our own hash of the bytes agree.
                    self.assertEqual(res["xxh3_file"], self.xxh3(data))
                    inspect = self.run_json_ok("blob", "inspect", out)
                    self.assertEqual(inspect["xxh3_file"], res["xxh3_file"])
                    paths.append(out)
                    digests.append(res["xxh3_file"])
                self.assertEqual(digests[0], digests[1])
                self.assertSameFiles(paths)
        # f32 and f16 blobs differ (the digest is not a constant).
        self.assertNotEqual(read(self.path("f32-0-0.rvne")), read(self.path("f16-0-0.rvne")))


class TestForwardAcrossThreads(DeterminismCase):
    THREADS = (["--threads", "1"], ["--threads", "2"], ["--threads", "3"], ["--threads", "2"])

    def test_generated_dense_and_sparse(self):
        # GQA 8:2 at a length where sparse differs from dense (seq > window), causal and not.
        base = ["--seq", "300", "--q-heads", "8", "--kv-heads", "2", "--dim", "16", "--window", "24", "--block", "16",
                "--seed", "0x77"]
        seen = set()
        for backend in ("sparse", "dense"):
            for causal in ("--causal", "--no-causal"):
                with self.subTest(backend=backend, causal=causal):
                    seen.add(self.outputs("forward", base + ["--backend", backend, causal], self.THREADS,
                                          f"fwd-{backend}{causal}"))
        self.assertEqual(len(seen), 4)  # four different outputs, each stable

    def test_npy_inputs(self):
        rng = np.random.default_rng(5)
        files = []
        for name, heads in (("q", 6), ("k", 3), ("v", 3)):
            p = self.path(f"{name}.npy")
            np.save(p, rng.standard_normal((257, heads, 32)).astype(np.float32))
            files += [f"--{name}", p]
        for backend in ("sparse", "dense"):
            with self.subTest(backend=backend):
                self.outputs("forward", files + ["--backend", backend, "--landmarks", "mass"], self.THREADS,
                             f"npy-{backend}")

    def test_model_mode(self):
        blob = self.path("m.rvne")
        self.assertExit(run("blob", "init", "--out", blob), OK)
        for backend in ("sparse", "dense"):
            for pool in ("mean", "last"):
                with self.subTest(backend=backend, pool=pool):
                    self.outputs("forward", ["--blob", blob, "--gen-frames", "150", "--backend", backend, "--pool", pool],
                                 self.THREADS, f"model-{backend}-{pool}")


class TestStreamAcrossRuns(DeterminismCase):
    # The decode is one thread; --threads parallelises the work around it (generating, the
    # parity pass, the head's layers). Any thread count, the same bytes.
    RUNS = (["--threads", "1"], ["--threads", "2"], ["--threads", "3"])

    def test_attention_stream(self):
        for extra in (["--kv-dtype", "f32"], ["--kv-dtype", "f16"], ["--capacity", "64", "--evict", "h2o"],
                      ["--no-causal"], ["--backend", "dense"]):
            with self.subTest(extra=extra):
                self.outputs("stream", ["--preset", "aether", "--seq", "200", "--no-parity", *extra], self.RUNS,
                             "stream-" + "-".join(e.strip("-") for e in extra))

    def test_model_stream(self):
        blob = self.path("m.rvne")
        self.assertExit(run("blob", "init", "--out", blob, "--dtype", "f16"), OK)
        for extra in ([], ["--kv-dtype", "f16"]):
            with self.subTest(extra=extra):
                self.outputs("stream", ["--blob", blob, "--gen-frames", "120", *extra], self.RUNS,
                             "model-stream-" + "-".join(e.strip("-") for e in extra))


if __name__ == "__main__":
    main()
