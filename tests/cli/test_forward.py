"""CLI tests of `rvtemporal forward`: exact exit codes, JSON fields, and the numbers themselves.

The attention outputs are checked against independent NumPy implementations written here from
attention-spec.md (dense in float64; the sparse candidate set of section 3 re-derived in Python),
against the reference Rust outputs in data/upstream/, and the temporal head against a NumPy
re-implementation of the blob model (spec section 6 payload layout).
"""
import json
import math
import os
import subprocess
import re
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rvt_cli import *  # noqa: E402,F401,F403

UPSTREAM = os.path.join(DATA, "upstream")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


# ---------------------------------------------------------------------------------------------
# Independent references (attention-spec.md sections 1-3, 5, 6)
# ---------------------------------------------------------------------------------------------

def candidates(i, n, window, block, globals_=(0,), causal=True, log_stride=True, landmarks=True):
    """Row i's (tokens, blocks) in the spec's order, each deduplicated separately."""
    tokens, seen = [], set()

    def tok(j):
        if j not in seen:
            seen.add(j)
            tokens.append(j)

    hi = i if causal else min(i + window, n - 1)
    for j in range(max(0, i - window), hi + 1):
        tok(j)
    for g in globals_:
        if g < n and (not causal or g <= i):
            tok(g)
    if log_stride:
        s = 1
        while s < n:
            if i >= s:
                tok(i - s)
            if not causal and i + s < n:
                tok(i + s)
            s *= 2
    blocks, bseen = [], set()

    def blk(b):
        if b not in bseen:
            bseen.add(b)
            blocks.append(b)

    n_blocks = (n + block - 1) // block
    if landmarks:
        if causal:
            avail = (i + 1) // block
            if avail:
                pivot = avail - 1
                if pivot >= 1:
                    blk(pivot - 1)
                blk(pivot)
                s = 1
                while log_stride and s < n_blocks and pivot >= s:
                    blk(pivot - s)
                    s *= 2
        else:
            cur = i // block
            if cur >= 1:
                blk(cur - 1)
            if cur + 1 < n_blocks:
                blk(cur + 1)
            s = 1
            while log_stride and s < n_blocks:
                if cur >= s:
                    blk(cur - s)
                if cur + s < n_blocks:
                    blk(cur + s)
                s *= 2
    return tokens, blocks


def mass_blocks(tokens, blocks, n, block):
    """--landmarks mass drops the blocks whose tokens are all direct candidates already."""
    tset = set(tokens)
    return [b for b in blocks if not all(j in tset for j in range(b * block, min((b + 1) * block, n)))]


def row_edges(n, window, block, mass=False, **kw):
    rows = []
    for i in range(n):
        toks, blks = candidates(i, n, window, block, **kw)
        rows.append(len(toks) + len(mass_blocks(toks, blks, n, block) if mass else blks))
    return rows


def np_dense(q, k, v, causal):
    """Exact softmax attention in float64, GQA: query head h reads kv head h // group."""
    q, k, v = (a.astype(np.float64) for a in (q, k, v))
    n, hq, d = q.shape
    group = hq // k.shape[1]
    out = np.zeros_like(q)
    for h in range(hq):
        s = q[:, h, :] @ k[:, h // group, :].T / math.sqrt(d)
        if causal:
            s = np.where(np.tril(np.ones((n, n), dtype=bool)), s, -np.inf)
        w = np.exp(s - s.max(axis=1, keepdims=True))
        out[:, h, :] = (w / w.sum(axis=1, keepdims=True)) @ v[:, h // group, :]
    return out


def np_sparse(q, k, v, window, block, globals_=(0,), causal=True, log_stride=True, landmarks=True, mass=False):
    """Sparse attention over the spec's candidate set, float64. Landmarks are plain block means;
    mass mode adds ln(count) to a landmark's score and skips blocks whose tokens are all candidates."""
    q, k, v = (a.astype(np.float64) for a in (q, k, v))
    n, hq, d = q.shape
    group = hq // k.shape[1]
    n_blocks = (n + block - 1) // block
    mk = np.stack([k[b * block:(b + 1) * block].mean(axis=0) for b in range(n_blocks)]) if n else k
    mv = np.stack([v[b * block:(b + 1) * block].mean(axis=0) for b in range(n_blocks)]) if n else v
    out = np.zeros_like(q)
    for i in range(n):
        toks, blks = candidates(i, n, window, block, globals_, causal, log_stride, landmarks)
        if mass:
            blks = mass_blocks(toks, blks, n, block)
        counts = np.array([min((b + 1) * block, n) - b * block for b in blks], dtype=np.float64)
        for h in range(hq):
            kh = h // group
            keys = np.concatenate([k[toks, kh, :], mk[blks, kh, :]]) if blks else k[toks, kh, :]
            vals = np.concatenate([v[toks, kh, :], mv[blks, kh, :]]) if blks else v[toks, kh, :]
            s = keys @ q[i, h, :] / math.sqrt(d)
            if mass and blks:
                s[len(toks):] += np.log(counts)
            w = np.exp(s - s.max())
            out[i, h, :] = w @ vals / w.sum()
    return out


def np_model(blob_path, frames, backend="sparse", window=32, block=16, causal=True, pool="mean"):
    """The temporal head from an f32 RVNE blob: per layer x += attn(xWq, xWk, xWv) Wo, pool, Wc."""
    data = read_bytes(blob_path)
    input_dim, hq, hk, hd, layers, classes, wlen = struct.unpack_from("<HHHHHHI", data, 8)
    w = np.frombuffer(data, dtype="<f4", count=wlen // 4, offset=24).astype(np.float64)
    x = frames.astype(np.float64)
    t = x.shape[0]
    off = 0

    def take(rows, cols):
        nonlocal off
        m = w[off:off + rows * cols].reshape(rows, cols)
        off += rows * cols
        return m

    for _ in range(layers):
        wq, wk, wv = take(input_dim, hq * hd), take(input_dim, hk * hd), take(input_dim, hk * hd)
        wo = take(hq * hd, input_dim)
        q, k, v = (x @ wq).reshape(t, hq, hd), (x @ wk).reshape(t, hk, hd), (x @ wv).reshape(t, hk, hd)
        o = np_dense(q, k, v, causal) if backend == "dense" else np_sparse(q, k, v, window, block, causal=causal)
        x = x + o.reshape(t, hq * hd) @ wo
    wc = take(input_dim, classes)
    assert off == w.size
    pooled = x[-1] if pool == "last" else x.mean(axis=0)
    return pooled @ wc


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read_json(path):
    with open(path) as f:
        return json.load(f)


# The kernels: "" lets the binary pick the widest ISA of this CPU, "scalar" forces the plain
# reference kernels (RVT_ISA, lib/src/kernels/isa.cpp). Both must match NumPy.
ISAS = ("", "scalar")



def max_err(a, b):
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


class ForwardCase(CliTestCase):
    def fwd(self, *args):
        """forward --json, must exit 0; returns the report's result."""
        p, r = run_json("forward", *args)
        self.assertExit(p, OK)
        self.assertEnvelope(r, "forward", 0)
        return r["result"]

    def save(self, name, array):
        p = self.path(name)
        np.save(p, array)
        return p

    def qkv_files(self, seq=200, q_heads=6, kv_heads=2, dim=16, seed=7):
        rng = np.random.default_rng(seed)
        q = rng.standard_normal((seq, q_heads, dim)).astype(np.float32)
        k = rng.standard_normal((seq, kv_heads, dim)).astype(np.float32)
        v = rng.standard_normal((seq, kv_heads, dim)).astype(np.float32)
        return (q, k, v), ["--q", self.save("q.npy", q), "--k", self.save("k.npy", k), "--v", self.save("v.npy", v)]


# ---------------------------------------------------------------------------------------------
# Generated inputs: edge counts, config echo, determinism
# ---------------------------------------------------------------------------------------------

class TestEdges(ForwardCase):
    def test_bench_256_matches_the_python_edge_set(self):
        res = self.fwd("--preset", "bench", "--seq", 256)
        rows = row_edges(256, 16, 32)
        per_head = sum(rows)
        self.assertEqual(per_head, 5672)  # our Python re-derivation of spec section 3
        e = res["edges"]
        self.assertEqual(e["per_head"], per_head)
        self.assertEqual((e["row_min"], e["row_max"]), (min(rows), max(rows)))
        self.assertAlmostEqual(e["row_mean"], per_head / 256, places=9)
        self.assertEqual(e["total"], per_head * 4)
        self.assertEqual(e["dense_equivalent_per_head"], 256 * 257 // 2)
        self.assertEqual(e["dense_equivalent_total"], 4 * 256 * 257 // 2)
        self.assertAlmostEqual(e["sparsity"], 1 - per_head / (256 * 257 / 2), places=12)
        self.assertEqual(res["shape"], dict(seq=256, q_heads=4, kv_heads=4, head_dim=32, gqa_group=1))
        self.assertEqual(res["mode"], "attention")
        self.assertEqual(res["backend"], "sparse")
        self.assertEqual(res["inputs"]["source"], "generated")
        self.assertEqual(res["inputs"]["q_shape"], [256, 4, 32])

    def test_spec_reference_values(self):
        # attention-spec.md section 3: per-head edge counts of the reference (causal, globals [0],
        # log-stride and landmarks on). Heads and dim kept tiny: the counts do not depend on them.
        for preset, seq, want in (("default", 512, 59778), ("default", 1024, 129858), ("default", 4096, 560834),
                                  ("default", 8192, 1146498), ("default", 65536, 9625026),
                                  ("bench", 64, 1064), ("bench", 1024, 27368), ("bench", 4096, 126632),
                                  ("aether", 64, 1714), ("aether", 4096, 191890)):
            with self.subTest(preset=preset, seq=seq):
                res = self.fwd("--preset", preset, "--seq", seq, "--dim", 1, "--q-heads", 2, "--kv-heads", 1)
                self.assertEqual(res["edges"]["per_head"], want)
                self.assertEqual(res["edges"]["total"], 2 * want)

    def test_upstream_fixture_edge_counts(self):
        # case.json estimate_sparse_edges_per_head of c3 (non-causal, globals 0,5,999) and c7 (aether).
        res = self.fwd("--seq", 257, "--q-heads", 2, "--kv-heads", 2, "--dim", 16, "--window", 8, "--block", 8,
                       "--no-causal", "--globals", "0,5,999")
        self.assertEqual(res["edges"]["per_head"], 8475)
        self.assertEqual(res["edges"]["dense_equivalent_per_head"], 257 * 257)
        res = self.fwd("--preset", "aether", "--seq", 777)
        self.assertEqual(res["edges"]["per_head"], 32327)
        self.assertEqual(res["edges"]["total"], 4 * 32327)
        c7_rows = np.load(os.path.join(UPSTREAM, "c7", "row_edges.npy"))
        self.assertEqual((res["edges"]["row_min"], res["edges"]["row_max"]), (int(c7_rows.min()), int(c7_rows.max())))

    def test_switches_change_the_edge_set(self):
        base = ["--seq", 300, "--window", 10, "--block", 20, "--q-heads", 1, "--kv-heads", 1, "--dim", 4]
        for extra, kw in (([], {}),
                          (["--no-causal"], dict(causal=False)),
                          (["--no-log-stride"], dict(log_stride=False)),
                          (["--no-landmarks"], dict(landmarks=False)),
                          (["--globals", "none"], dict(globals_=())),
                          (["--globals", "3,150,999"], dict(globals_=(3, 150, 999)))):
            with self.subTest(extra=extra):
                res = self.fwd(*base, *extra)
                self.assertEqual(res["edges"]["per_head"], sum(row_edges(300, 10, 20, **kw)))

    def test_dense_backend_counts_every_pair(self):
        e = self.fwd("--backend", "dense", "--seq", 100, "--q-heads", 3, "--kv-heads", 1, "--dim", 8)["edges"]
        self.assertEqual(e["per_head"], 100 * 101 // 2)
        self.assertEqual(e["total"], 3 * 100 * 101 // 2)
        self.assertEqual(e["sparsity"], 0.0)
        self.assertNotIn("row_max", e)
        e = self.fwd("--backend", "dense", "--seq", 100, "--no-causal", "--dim", 8)["edges"]
        self.assertEqual(e["per_head"], 100 * 100)
        self.assertEqual(e["dense_equivalent_per_head"], 100 * 100)

    def test_long_dense_pass_is_announced(self):
        # One head at dim 1: 2 N (N + 1) = 1.06e13 float operations, past the 1e13 that a dense
        # pass announces on stderr before it starts; killed once it has (the pass takes minutes).
        out = self.path("never.npy")
        line = first_stderr_line("forward", "--backend", "dense", "--seq", 2300000, "--q-heads", 1, "--kv-heads", 1,
                                 "--dim", 1, "--json", "-o", out)
        self.assertEqual(line, "warning: forward: dense attention over 2300000 tokens: 1.06e+13 float "
                         "operations (the sparse backend's: 1.45e+09); nothing more is printed until it ends")
        self.assertFalse(os.path.exists(out))
        self.assertEqual(self.no_temp_files(self.tmp), [])
        # A shorter pass says nothing.
        p = run("forward", "--backend", "dense", "--seq", 100, "--json")
        self.assertExit(p, OK)
        self.assertEqual(p.stderr, "")

    def test_empty_generated_sequence(self):
        res = self.fwd("--seq", 0, "--dim", 8)
        self.assertEqual(res["edges"]["per_head"], 0)
        self.assertEqual(res["edges"]["sparsity"], 0.0)
        self.assertEqual(res["output"]["stats"]["count"], 0)


class TestBuildInfo(CliTestCase):
    def test_git_commit_is_the_source_trees_commit(self):
        # Recorded at build time (cmake/GitCommit.cmake), so a build after a new commit names
        # that commit, not the one CMake was last configured at.
        here = os.path.dirname(os.path.abspath(__file__))
        try:
            described = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=here,
                                       capture_output=True, text=True, timeout=30)
        except OSError:
            self.skipTest("git is not installed")
        if described.returncode != 0:
            self.skipTest("not a git checkout")
        p, r = run_json("forward", "--seq", "8")
        self.assertExit(p, OK)
        # The tree may have been committed or edited since the build: compare the commit part.
        self.assertEqual(r["tool"]["git_commit"].removesuffix("-dirty"), described.stdout.strip().removesuffix("-dirty"))


class TestConfigAndPresets(ForwardCase):
    def test_config_echo(self):
        res = self.fwd("--seq", 40, "--dim", 8, "--window", 5, "--block", 7, "--globals", "0,5", "--no-causal",
                       "--no-log-stride", "--landmarks", "mass")
        self.assertEqual(res["config"], dict(window=5, block_size=7, globals=[0, 5], causal=False, log_stride=False,
                                             landmarks=True, landmark_mode="mass"))
        res = self.fwd("--seq", 40, "--dim", 8, "--no-landmarks", "--globals", "none")
        self.assertEqual(res["config"], dict(window=128, block_size=64, globals=[], causal=True, log_stride=True,
                                             landmarks=False, landmark_mode="mean"))
        # the dense backend echoes causal only
        self.assertEqual(self.fwd("--backend", "dense", "--seq", 8, "--no-causal")["config"], {"causal": False})

    def test_presets(self):
        for name, shape, w, b in (("aether", (4, 1, 32, 4), 32, 16), ("bench", (4, 4, 32, 1), 16, 32),
                                  ("default", (4, 4, 32, 1), 128, 64)):
            with self.subTest(preset=name):
                res = self.fwd("--preset", name, "--seq", 16)
                s = res["shape"]
                self.assertEqual((s["q_heads"], s["kv_heads"], s["head_dim"], s["gqa_group"]), shape)
                self.assertEqual((res["config"]["window"], res["config"]["block_size"]), (w, b))

    def test_explicit_options_override_the_preset(self):
        res = self.fwd("--preset", "bench", "--seq", 256, "--window", 40)
        self.assertEqual((res["config"]["window"], res["config"]["block_size"]), (40, 32))
        self.assertEqual(res["edges"]["per_head"], sum(row_edges(256, 40, 32)))
        res = self.fwd("--preset", "aether", "--seq", 16, "--kv-heads", 2, "--block", 4)
        self.assertEqual((res["shape"]["q_heads"], res["shape"]["kv_heads"]), (4, 2))
        self.assertEqual((res["config"]["window"], res["config"]["block_size"]), (32, 4))


class TestDeterminism(ForwardCase):
    ARGS = ("--preset", "aether", "--seq", 300, "--seed", "0x1234")

    def test_same_digest_across_runs_and_thread_counts(self):
        digests = [self.fwd(*self.ARGS, "--threads", t)["output"]["xxh3"] for t in (1, 2, 2, 3)]
        self.assertRegex(digests[0], HEX16)
        self.assertEqual(len(set(digests)), 1, digests)
        for backend in ("dense",):
            a = self.fwd(*self.ARGS, "--backend", backend, "--threads", 1)["output"]["xxh3"]
            b = self.fwd(*self.ARGS, "--backend", backend, "--threads", 2)["output"]["xxh3"]
            self.assertEqual(a, b)
            self.assertNotEqual(a, digests[0])  # dense and sparse outputs differ at seq 300 > W

    def test_default_threads_are_the_cpus_this_process_may_use(self):
        # Pinned to one CPU (taskset, a cpuset), the default is one worker, not the machine's count.
        if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
            self.skipTest("needs two CPUs to choose from")
        cpu = min(os.sched_getaffinity(0))
        p = subprocess.run([BIN, "forward", *map(str, self.ARGS), "--json"], capture_output=True, text=True,
                           preexec_fn=lambda: os.sched_setaffinity(0, {cpu}), timeout=120)
        self.assertExit(p, OK)
        self.assertEqual(json.loads(p.stdout)["result"]["threads"], 1)
        self.assertEqual(self.fwd(*self.ARGS)["threads"], len(os.sched_getaffinity(0)))

    def test_seed_and_generator_change_the_digest(self):
        base = self.fwd(*self.ARGS)["output"]["xxh3"]
        self.assertNotEqual(self.fwd("--preset", "aether", "--seq", 300, "--seed", "0x1235")["output"]["xxh3"], base)
        self.assertNotEqual(self.fwd(*self.ARGS, "--gen", "uniform")["output"]["xxh3"], base)
        res = self.fwd(*self.ARGS, "--gen", "sincos")
        self.assertEqual(res["inputs"]["generator"], "sincos")
        self.assertEqual(res["inputs"]["seed"], "0000000000001234")

    def test_digest_and_stats_describe_the_written_file(self):
        out = self.path("o.npy")
        res = self.fwd(*self.ARGS, "--out", out)
        a = np.load(out)
        self.assertEqual(a.shape, (300, 4, 32))
        self.assertEqual(a.dtype, np.float32)
        st = res["output"]["stats"]
        self.assertEqual(st["count"], a.size)
        self.assertEqual(st["min"], float(a.min()))
        self.assertEqual(st["max"], float(a.max()))
        self.assertAlmostEqual(st["mean"], float(a.astype(np.float64).mean()), places=9)
        self.assertEqual((st["nan_count"], st["inf_count"]), (0, 0))
        self.assertEqual(res["output"]["path"], out)
        self.assertEqual(self.fwd(*self.ARGS)["output"]["xxh3"], res["output"]["xxh3"])


# ---------------------------------------------------------------------------------------------
# NumPy cross-checks on user .npy inputs (GQA 6:2, dim 16)
# ---------------------------------------------------------------------------------------------

class TestNumpyCrossCheck(ForwardCase):
    def run_out(self, files, *args):
        out = self.path("out.npy")
        if os.path.exists(out):
            os.remove(out)
        res = self.fwd(*files, "--out", out, *args)
        a = np.load(out)
        self.assertEqual(a.dtype, np.float32)
        return res, a

    def test_dense_matches_numpy(self):
        (q, k, v), files = self.qkv_files()
        for isa, (causal, flag) in ((i, c) for i in ISAS for c in ((True, "--causal"), (False, "--no-causal"))):
            with self.subTest(isa=isa, causal=causal), isa_env(isa):
                res, out = self.run_out(files, "--backend", "dense", flag)
                self.assertEqual(out.shape, (200, 6, 16))
                self.assertEqual(res["inputs"]["source"], "files")
                self.assertEqual(res["inputs"]["k_shape"], [200, 2, 16])
                self.assertEqual(res["shape"]["gqa_group"], 3)
                self.assertLess(max_err(out, np_dense(q, k, v, causal)), 1e-5)
        # the two modes really differ (so the check above can tell them apart)
        self.assertGreater(max_err(np_dense(q, k, v, True), np_dense(q, k, v, False)), 0.1)

    def test_generator_options_beside_files_are_named(self):
        (q, k, v), files = self.qkv_files()
        want = self.run_out(files)[1]
        out = self.path("out.npy")
        p = run("forward", *files, "--seq", 64, "--dim", 4, "--seed", 7, "--out", out)
        self.assertExit(p, OK)
        np.testing.assert_array_equal(np.load(out), want)  # the files' shape and values, as without them
        self.assertEqual(p.stderr.splitlines(), ["warning: forward: --seed, --seq, --dim have no effect with "
                                                 "--q/--k/--v (the inputs and their shape come from the files)"])
        p = run("forward", *files, "--preset", "bench", "--window", 4)
        self.assertExit(p, OK)
        self.assertEqual(p.stderr, "")  # the preset's pattern applies to files

    def test_column_major_and_big_endian_files_give_the_c_order_result(self):
        # What np.save writes for a transposed array (fortran_order True) or a '>f4' / '>f8'
        # one: the values are reordered and byte-swapped on reading, the output is the same.
        (q, k, v), files = self.qkv_files()
        base = self.fwd(*files)["output"]["xxh3"]
        variants = {
            "fortran": lambda a: np.asfortranarray(a),
            "transposed": lambda a: np.ascontiguousarray(a.transpose(2, 1, 0)).T,
            "big_f4": lambda a: a.astype(">f4"),
            "big_f8_fortran": lambda a: np.asfortranarray(a.astype(">f8")),
        }
        for name, make in variants.items():
            with self.subTest(variant=name):
                arrays = [make(a) for a in (q, k, v)]
                self.assertTrue(all((a == b).all() for a, b in zip(arrays, (q, k, v))))
                paths = [self.save(name + "_" + t + ".npy", a) for t, a in zip("qkv", arrays)]
                res = self.fwd("--q", paths[0], "--k", paths[1], "--v", paths[2])
                self.assertEqual(res["output"]["xxh3"], base)

    def test_sparse_with_a_full_window_is_dense(self):
        (q, k, v), files = self.qkv_files()
        for isa, (causal, flag) in ((i, c) for i in ISAS for c in ((True, "--causal"), (False, "--no-causal"))):
            with self.subTest(isa=isa, causal=causal), isa_env(isa):
                res, out = self.run_out(files, "--window", 1000, "--no-log-stride", "--no-landmarks",
                                        "--globals", "none", flag)
                self.assertEqual(res["backend"], "sparse")
                self.assertLess(max_err(out, np_dense(q, k, v, causal)), 1e-5)
                self.assertEqual(res["edges"]["per_head"], res["edges"]["dense_equivalent_per_head"])

    def test_sparse_matches_the_numpy_candidate_set(self):
        # Small window and blocks so every primitive matters; landmarks overlap the window (compat).
        (q, k, v), files = self.qkv_files(seq=150)
        for extra, kw in (([], {}),
                          (["--no-causal", "--globals", "0,7,400"], dict(causal=False, globals_=(0, 7, 400))),
                          (["--landmarks", "mass"], dict(mass=True)),
                          (["--no-causal", "--landmarks", "mass"], dict(causal=False, mass=True))):
            ref = np_sparse(q, k, v, 6, 10, **kw)
            for isa in ISAS:
                with self.subTest(extra=extra, isa=isa), isa_env(isa):
                    _, out = self.run_out(files, "--window", 6, "--block", 10, *extra)
                    self.assertLess(max_err(out, ref), 1e-5)
                    self.assertGreater(max_err(out, np_dense(q, k, v, kw.get("causal", True))), 1e-2)
        # mean and mass modes give different outputs
        _, a = self.run_out(files, "--window", 6, "--block", 10)
        _, b = self.run_out(files, "--window", 6, "--block", 10, "--landmarks", "mass")
        self.assertGreater(max_err(a, b), 1e-3)


# ---------------------------------------------------------------------------------------------
# The reference Rust outputs (data/upstream)
# ---------------------------------------------------------------------------------------------

class TestUpstreamFixtures(ForwardCase):
    def test_c3_non_causal_globals(self):
        d = os.path.join(UPSTREAM, "c3")
        out = self.path("c3.npy")
        res = self.fwd("--q", os.path.join(d, "q.npy"), "--k", os.path.join(d, "k.npy"), "--v", os.path.join(d, "v.npy"),
                       "--window", 8, "--block", 8, "--no-causal", "--globals", "0,5,999", "--out", out)
        self.assertEqual(res["edges"]["per_head"], 8475)
        self.assertLess(max_err(np.load(out), np.load(os.path.join(d, "out_sparse.npy"))), 1e-5)
        out_d = self.path("c3d.npy")
        self.fwd("--q", os.path.join(d, "q.npy"), "--k", os.path.join(d, "k.npy"), "--v", os.path.join(d, "v.npy"),
                 "--backend", "dense", "--no-causal", "--out", out_d)
        self.assertLess(max_err(np.load(out_d), np.load(os.path.join(d, "out_dense.npy"))), 1e-5)

    def test_c7_generated_aether(self):
        # The generator (splitmix64 + Box-Muller, q then k then v) reproduces the case's stored inputs,
        # so --gen normal with the case seed needs no files.
        out = self.path("c7.npy")
        self.fwd("--gen", "normal", "--seed", "0x5EED0007", "--seq", 777, "--preset", "aether", "--out", out)
        self.assertLess(max_err(np.load(out), np.load(os.path.join(UPSTREAM, "c7", "out_sparse.npy"))), 1e-5)


# ---------------------------------------------------------------------------------------------
# --pattern-row
# ---------------------------------------------------------------------------------------------

class TestPatternRow(ForwardCase):
    def test_aether_row_40(self):
        # By hand from spec section 3, aether (W 32, B 16, globals [0], causal), N 64, row 40:
        #  window: max(0, 40-32) = 8 .. 40                        -> 33 tokens, kind "window"
        #  globals: 0 <= 40, not in the window                     -> token 0, kind "global"
        #  log-stride s = 1,2,4,8,16,32: 39,38,36,32,24,8 are all inside the window (s <= W), nothing new
        #  landmarks: avail = 41 // 16 = 2, pivot 1 -> blocks 0 (pivot-1), 1 (pivot); stride s=1 gives 0
        #  again (dedup), s=2 > pivot stops.                       -> blocks 0 [0,16) and 1 [16,32)
        res = self.fwd("--preset", "aether", "--seq", 64, "--pattern-row", 40)
        (row,) = res["pattern_rows"]
        want_tokens = [{"pos": j, "kind": "window"} for j in range(8, 41)] + [{"pos": 0, "kind": "global"}]
        self.assertEqual(row["row"], 40)
        self.assertEqual(row["tokens"], want_tokens)
        self.assertEqual(row["blocks"], [{"block": 0, "begin": 0, "end": 16}, {"block": 1, "begin": 16, "end": 32}])
        self.assertEqual(row["edges"], 36)

    def test_mass_mode_skips_covered_blocks(self):
        # Same row as above with --landmarks mass: block 1 = [16, 32) lies inside the window 8..40,
        # so it is dropped; block 0 = [0, 16) is only partly covered (tokens 0 and 8..15) and stays.
        res = self.fwd("--preset", "aether", "--seq", 64, "--landmarks", "mass", "--pattern-row", 40)
        (row,) = res["pattern_rows"]
        self.assertEqual(row["blocks"], [{"block": 0, "begin": 0, "end": 16}])
        self.assertEqual(row["edges"], 35)
        self.assertEqual(res["edges"]["per_head"], sum(row_edges(64, 32, 16, mass=True)))
        self.assertLess(res["edges"]["per_head"], 1714)

    def test_stride_kinds_and_several_rows(self):
        # bench (W 16, B 32), N 64, non-causal, row 40:
        #  window 24..56; global 0; strides 40-s for s=1..32 -> only 8 (40-32) is outside the window;
        #  40+s -> 41,42,44,48 inside, 56 inside, 72 >= 64 out. Blocks: cur = 1, cur-1 = 0, cur+1 = 2 out
        #  of range (2 blocks), strides s=1 -> 0 again.  Row 0 causal-free: window 0..16, strides 1,2,4,8,16
        #  inside, 32 outside (stride); blocks cur 0 -> cur+1 = 1.
        res = self.fwd("--preset", "bench", "--seq", 64, "--no-causal", "--pattern-row", "40,0")
        r40, r0 = res["pattern_rows"]
        self.assertEqual(r40["tokens"], [{"pos": j, "kind": "window"} for j in range(24, 57)] +
                         [{"pos": 0, "kind": "global"}, {"pos": 8, "kind": "stride"}])
        self.assertEqual(r40["blocks"], [{"block": 0, "begin": 0, "end": 32}])
        self.assertEqual(r0["row"], 0)
        self.assertEqual(r0["tokens"], [{"pos": j, "kind": "window"} for j in range(0, 17)] +
                         [{"pos": 32, "kind": "stride"}])
        self.assertEqual(r0["blocks"], [{"block": 1, "begin": 32, "end": 64}])
        # and the same lists come out of the Python re-derivation
        for r in (r40, r0):
            toks, blks = candidates(r["row"], 64, 16, 32, causal=False)
            self.assertEqual([t["pos"] for t in r["tokens"]], toks)
            self.assertEqual([b["block"] for b in r["blocks"]], blks)
            self.assertEqual(r["edges"], len(toks) + len(blks))

    def test_partial_last_block(self):
        res = self.fwd("--seq", 50, "--dim", 4, "--window", 4, "--block", 16, "--no-causal", "--pattern-row", 20)
        self.assertIn({"block": 3, "begin": 48, "end": 50}, res["pattern_rows"][0]["blocks"])

    def test_no_rows_by_default(self):
        self.assertEqual(self.fwd("--seq", 8, "--dim", 4)["pattern_rows"], [])

    def test_row_out_of_range(self):
        p = run("forward", "--preset", "aether", "--seq", 64, "--pattern-row", 64)
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--pattern-row 64", "seq 64")
        p = run("forward", "--seq", 8, "--pattern-row", "1,a")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--pattern-row")


# ---------------------------------------------------------------------------------------------
# Model mode: the temporal head from a blob
# ---------------------------------------------------------------------------------------------

class TestModel(ForwardCase):
    def setUp(self):
        super().setUp()
        self.blob = self.path("model.rvne")
        p = run("blob", "init", "--out", self.blob)
        self.assertExit(p, OK)

    def logits(self, *args):
        res = self.fwd("--blob", self.blob, *args)
        self.assertEqual(res["mode"], "model")
        return res, np.array(res["logits"], dtype=np.float64)

    def test_options_the_head_does_not_use_are_named(self):
        # The head takes its shape from the blob and has a fixed pattern: such options given
        # with --blob are named in one warning line, the run is as without them.
        want = run_json("forward", "--blob", self.blob, "--gen-frames", 30)[1]["result"]["logits"]
        p, res = run_json("forward", "--blob", self.blob, "--gen-frames", 30, "--seq", 9, "--globals", "0,3",
                          "--landmarks", "mass", "--pattern-row", 2)
        self.assertExit(p, OK)
        self.assertEqual(res["result"]["logits"], want)
        self.assertEqual(p.stderr.splitlines(), [
            "warning: forward: --seq, --globals, --landmarks, --pattern-row have no effect with --blob (the temporal "
            "head takes its heads and dim from the blob, its pattern is globals [0], log-stride and mean landmarks)"])
        p = run("forward", "--blob", self.blob, "--gen-frames", 30, "--dim", 16, "-q")
        self.assertExit(p, OK)
        self.assertEqual(p.stderr, "")  # -q: errors only
        p = run("forward", "--blob", self.blob, "--gen-frames", 30, "--window", 8, "--no-causal", "--pool", "last")
        self.assertExit(p, OK)
        self.assertEqual(p.stderr, "")  # options the head uses
        p = run("forward", "--seq", 30, "--pool", "last")
        self.assertExit(p, OK)
        self.assertEqual(p.stderr.splitlines(),
                         ["warning: forward: --pool has no effect without --blob (it pools the temporal head's output)"])
        # An option without effect still needs a well-formed value: exit 2, as when it is used.
        for cmd, args, option in (("forward", ["--seq", 30, "--pool", "bogus"], "--pool"),
                                  ("forward", ["--blob", self.blob, "--gen-frames", 5, "--landmarks", "bogus"], "--landmarks"),
                                  ("forward", ["--blob", self.blob, "--gen-frames", 5, "--globals", "x"], "--globals"),
                                  ("stream", ["--blob", self.blob, "--gen-frames", 5, "--landmarks", "bogus"], "--landmarks"),
                                  ("stream", ["--blob", self.blob, "--gen-frames", 5, "--seed", "0x"], "--seed")):
            with self.subTest(cmd=cmd, option=option):
                p = run(cmd, *args)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, option)

    def test_long_dense_head_is_announced(self):
        # The default blob's head, dense: 2 layers x 4 heads x dim 32, 2 N (N + 1) x 256 float
        # operations, 1e13 from N = 139754; killed once announced.
        out = self.path("never.npy")
        line = first_stderr_line("forward", "--blob", self.blob, "--backend", "dense", "--gen-frames", 139754, "-o", out)
        self.assertRegex(line, r"^warning: forward: temporal head \(2 layers\), dense attention over 139754 tokens: "
                               r"1e\+13 float operations \(the sparse backend's: [0-9.e+]+\); nothing more is "
                               r"printed until it ends$")
        self.assertFalse(os.path.exists(out))
        self.assertEqual(self.no_temp_files(self.tmp), [])
        p = run("forward", "--blob", self.blob, "--backend", "dense", "--gen-frames", 500)
        self.assertExit(p, OK)
        self.assertEqual(p.stderr, "")

    def test_generated_frames(self):
        res, lg = self.logits("--gen-frames", 50)
        self.assertEqual(lg.shape, (4,))
        self.assertTrue(np.all(np.isfinite(lg)))
        self.assertEqual(res["argmax"], int(np.argmax(lg)))
        self.assertEqual(res["head"], dict(input_dim=16, q_heads=4, kv_heads=1, head_dim=32, layers=2, classes=4,
                                           window=32, block_size=16, causal=True, pool="mean"))
        self.assertEqual(res["frames"], dict(source="generated", generator="normal", seed="0000000000005eed", count=50))
        self.assertEqual(res["blob"]["xxh3_file"], "7dfd4dd2b7a1928e")
        self.assertEqual(res["edges_per_head_all_layers"], 2 * sum(row_edges(50, 32, 16)))
        self.assertRegex(res["output"]["xxh3"], HEX16)
        res2, lg2 = self.logits("--gen-frames", 50, "--threads", 1)
        self.assertEqual(lg.tolist(), lg2.tolist())
        self.assertEqual(res["output"]["xxh3"], res2["output"]["xxh3"])
        _, other_seed = self.logits("--gen-frames", 50, "--seed", 1)
        self.assertFalse(np.array_equal(lg, other_seed))

    def test_dense_and_pool_variants(self):
        _, sparse = self.logits("--gen-frames", 50)
        res, dense = self.logits("--gen-frames", 50, "--backend", "dense")
        self.assertEqual(res["backend"], "dense")
        self.assertEqual(res["edges_per_head_all_layers"], 2 * 50 * 51 // 2)
        diff = max_err(sparse, dense)
        self.assertGreater(diff, 1e-6)   # 50 frames > W 32: the sparse head really is sparse
        self.assertLess(diff, 0.05)      # ... but close to dense
        res, last = self.logits("--gen-frames", 50, "--pool", "last")
        self.assertEqual(res["head"]["pool"], "last")
        self.assertGreater(max_err(sparse, last), 1e-4)

    def test_frames_file_matches_numpy_model(self):
        frames = np.random.default_rng(3).standard_normal((40, 16)).astype(np.float32)
        f = self.save("frames.npy", frames)
        for args, kw in (([], {}),
                         (["--backend", "dense"], dict(backend="dense")),
                         (["--pool", "last", "--no-causal", "--window", 5, "--block", 8],
                          dict(pool="last", causal=False, window=5, block=8))):
            ref = np_model(self.blob, frames, **kw)
            for isa in ISAS:
                with self.subTest(args=args, isa=isa), isa_env(isa):
                    res, lg = self.logits("--frames", f, *args)
                    self.assertEqual(res["frames"], dict(source="file", path=f, count=40))
                    self.assertEqual(lg.shape, (4,))
                    self.assertLess(max_err(lg, ref), 1e-5)

    def test_logits_out(self):
        out = self.path("logits.npy")
        _, lg = self.logits("--gen-frames", 20, "--out", out)
        a = np.load(out)
        self.assertEqual(a.shape, (4,))
        self.assertEqual(a.dtype, np.float32)
        self.assertEqual(a.astype(np.float64).tolist(), lg.tolist())

    def test_bad_frames(self):
        f15 = self.save("f15.npy", np.zeros((10, 15), np.float32))
        p = run("forward", "--blob", self.blob, "--frames", f15)
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p, f15, "input_dim 15", "16")
        f3 = self.save("f3.npy", np.zeros((10, 1, 16), np.float32))
        p = run("forward", "--blob", self.blob, "--frames", f3)
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p, f3, "2-d")
        f0 = self.save("f0.npy", np.zeros((0, 16), np.float32))
        p = run("forward", "--blob", self.blob, "--frames", f0)
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p, f0)

    def test_bad_blob_and_usage(self):
        data = bytearray(read_bytes(self.blob))
        data[100] ^= 0x01  # CRC no longer matches
        bad = self.path("bad.rvne")
        write_bytes(bad, bytes(data))
        p = run("forward", "--blob", bad, "--gen-frames", 5)
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p, bad)
        p = run("forward", "--blob", self.path("missing.rvne"), "--gen-frames", 5)
        self.assertExit(p, IO)
        self.assertOneLineError(p, "missing.rvne")
        p = run("forward", "--blob", self.blob)  # neither --frames nor --gen-frames
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--gen-frames")
        p = run("forward", "--blob", self.blob, "--gen-frames", 5, "--pool", "max")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--pool")
        # Model options without --blob, 0 frames included (0 once read as "not given").
        for command in ("forward", "stream"):
            for extra in (("--gen-frames", 5), ("--gen-frames", 0), ("--frames", self.path("f.npy"))):
                with self.subTest(command=command, extra=extra):
                    p = run(command, "--seq", 8, *extra)
                    self.assertExit(p, USAGE)
                    self.assertOneLineError(p, "--gen-frames", "need --blob")


# ---------------------------------------------------------------------------------------------
# Bad inputs: exact exit codes, one-line errors naming the file or option
# ---------------------------------------------------------------------------------------------

class TestBadInputs(ForwardCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(11)
        self.q = self.save("q.npy", rng.standard_normal((20, 6, 8)).astype(np.float32))
        self.k = self.save("k.npy", rng.standard_normal((20, 2, 8)).astype(np.float32))
        self.v = self.save("v.npy", rng.standard_normal((20, 2, 8)).astype(np.float32))

    def expect(self, code, args, *fragments):
        p = run("forward", *args)
        self.assertExit(p, code)
        self.assertEqual(p.stdout, "")
        self.assertOneLineError(p, *fragments)
        return p

    def test_shape_mismatches_between_files(self):
        k19 = self.save("k19.npy", np.zeros((19, 2, 8), np.float32))
        self.expect(BAD_INPUT, ["--q", self.q, "--k", k19, "--v", k19], "seq 20", "seq 19", k19)
        k4 = self.save("k4.npy", np.zeros((20, 4, 8), np.float32))
        self.expect(BAD_INPUT, ["--q", self.q, "--k", k4, "--v", k4], "not divisible", k4)
        kd = self.save("kd.npy", np.zeros((20, 2, 4), np.float32))
        self.expect(BAD_INPUT, ["--q", self.q, "--k", kd, "--v", kd], "head dim", kd)
        self.expect(BAD_INPUT, ["--q", self.q, "--k", self.k, "--v", self.q], "same shape", self.q)

    def test_malformed_npy(self):
        q2 = self.save("q2.npy", np.zeros((20, 48), np.float32))
        self.expect(BAD_INPUT, ["--q", q2, "--k", self.k, "--v", self.v], q2, "3-d")
        qi = self.save("qi.npy", np.zeros((20, 6, 8), np.int64))
        self.expect(BAD_INPUT, ["--q", self.q, "--k", qi, "--v", self.v], qi, "dtype")
        data = read_bytes(self.v)
        vt = self.path("vt.npy")
        write_bytes(vt, data[:-7])
        self.expect(BAD_INPUT, ["--q", self.q, "--k", self.k, "--v", vt], vt, "truncated")

    def test_unreadable_files(self):
        missing = self.path("missing.npy")
        self.expect(IO, ["--q", self.q, "--k", missing, "--v", self.v], missing)
        d = self.path("dir.npy")
        os.mkdir(d)
        self.expect(IO, ["--q", d, "--k", self.k, "--v", self.v], d)

    def test_usage_errors(self):
        self.expect(USAGE, ["--q", self.q], "--q, --k and --v")
        self.expect(USAGE, ["--q", self.q, "--k", self.k], "--q, --k and --v")
        self.expect(USAGE, ["--seq", 8, "--block", 0], "--block: the block size")
        self.expect(USAGE, ["--seq", 8, "--backend", "bogus"], "--backend", "bogus")
        self.expect(USAGE, ["--seq", 8, "--gen", "bogus"], "--gen", "bogus")
        self.expect(USAGE, ["--seq", 8, "--landmarks", "bogus"], "--landmarks", "bogus")
        self.expect(USAGE, ["--seq", 8, "--globals", "1,x"], "--globals", "1,x")
        self.expect(USAGE, ["--seq", 8, "--preset", "bogus"], "--preset", "bogus")
        self.expect(USAGE, ["--seq", 8, "--q-heads", 3, "--kv-heads", 2], "--q-heads 3", "--kv-heads 2")
        self.expect(USAGE, ["--seq", 8, "--q-heads", 0], "--q-heads")
        self.expect(USAGE, ["--seq", 8, "--seed", "zz"], "--seed")
        self.expect(USAGE, ["--seq", 8, "--frames", self.q], "--blob")
        self.expect(USAGE, ["--seq", 8, "--gen-frames", 5], "--blob")
        self.expect(USAGE, ["--seq", 8, "--bogus-option"], "--bogus-option")

    def test_usage_error_in_json_mode(self):
        p, r = run_json("forward", "--seq", 8, "--block", 0)
        self.assertExit(p, USAGE)
        self.assertEnvelope(r, "forward", USAGE)
        self.assertIn("--block", r["error"]["message"])

    def test_out_into_missing_directory(self):
        target = os.path.join(self.tmp, "nodir", "out.npy")
        self.expect(IO, ["--seq", 8, "--dim", 4, "--out", target], target)
        self.assertFalse(os.path.exists(os.path.dirname(target)))
        self.assertEqual(self.no_temp_files(self.tmp), [])
        d = self.path("outdir")
        os.mkdir(d)
        self.expect(IO, ["--seq", 8, "--dim", 4, "--out", d], d)
        self.assertEqual(os.listdir(d), [])
        self.assertEqual(self.no_temp_files(self.tmp), [])

    def nonfinite_message(self, path, array, index, text=None):
        """The one stderr line for the first non-finite element of `array` (at `index`)."""
        flat = int(np.ravel_multi_index(index, array.shape))
        value = text or ("nan" if np.isnan(array[index]) else "inf" if array[index] > 0 else "-inf")
        pos = "[" + ", ".join(str(i) for i in index) + "]"
        return (f"rvtemporal: error: {path}: non-finite value {value} at {pos} "
                f"(element {flat} of {array.size}); pass --allow-nonfinite to propagate it")

    def test_non_finite_inputs_are_rejected_by_default(self):
        q, k, v = np.load(self.q), np.load(self.k), np.load(self.v)
        cases = []
        qn = q.copy()
        qn[3, 1, 2] = np.nan
        qn[15, 0, 0] = np.inf  # later: the first one is reported
        cases.append(("qnan.npy", qn, (3, 1, 2), "q"))
        kn = k.copy()
        kn[0, 1, 7] = np.inf
        cases.append(("kinf.npy", kn, (0, 1, 7), "k"))
        vn = v.copy()
        vn[19, 1, 7] = -np.inf  # the very last element
        cases.append(("vneg.npy", vn, (19, 1, 7), "v"))
        for name, array, index, which in cases:
            bad = self.save(name, array)
            files = {"q": self.q, "k": self.k, "v": self.v, which: bad}
            args = ["--q", files["q"], "--k", files["k"], "--v", files["v"]]
            for backend in ("sparse", "dense"):
                with self.subTest(name=name, backend=backend):
                    out = self.path("never.npy")
                    p = run("forward", *args, "--backend", backend, "--out", out)
                    self.assertExit(p, BAD_INPUT)
                    self.assertEqual(p.stdout, "")
                    self.assertEqual(p.stderr.strip(), self.nonfinite_message(bad, array, index))
                    self.assertFalse(os.path.exists(out))
                    self.assertEqual(self.no_temp_files(self.tmp), [])
        # Several bad files: the first one read (q, then k, then v) is named.
        k_bad, v_bad = self.save("k2.npy", kn), self.save("v2.npy", vn)
        p = run("forward", "--q", self.q, "--k", k_bad, "--v", v_bad)
        self.assertExit(p, BAD_INPUT)
        self.assertEqual(p.stderr.strip(), self.nonfinite_message(k_bad, kn, (0, 1, 7)))
        # The JSON envelope carries the same message.
        p, r = run_json("forward", "--q", self.save("qnan.npy", qn), "--k", self.k, "--v", self.v)
        self.assertExit(p, BAD_INPUT)
        self.assertEnvelope(r, "forward", BAD_INPUT)
        self.assertIn("non-finite value nan at [3, 1, 2]", r["error"]["message"])
        # A float64 file whose value overflows f32 is refused too, and the message says why it is inf.
        q64 = q.astype(np.float64)
        q64[2, 5, 1] = 1e300
        f64 = self.save("q64.npy", q64)
        p = run("forward", "--q", f64, "--k", self.k, "--v", self.v)
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p, f64, "non-finite value inf at [2, 5, 1]", "float64 inf or beyond the f32 range")

    def test_non_finite_inputs_propagate_with_allow_nonfinite(self):
        # A NaN in one query element poisons exactly that output row/head (dim values); the run
        # succeeds and the report's non-finite count says so.
        q = np.load(self.q)
        q[3, 1, 2] = np.nan
        qn = self.save("qnan.npy", q)
        # Every backend on every ISA: non-finite inputs take the scalar reference kernels, so the
        # NaN pattern does not depend on the CPU.
        for backend in ("sparse", "dense"):
            for isa in ("", "scalar", "avx2", "avx512"):
                with self.subTest(backend=backend, isa=isa), isa_env(isa):
                    out = self.path("o.npy")
                    p = run("forward", "--q", qn, "--k", self.k, "--v", self.v, "--backend", backend, "--json",
                            "--allow-nonfinite", "--out", out)
                    if p.returncode == UNSUPPORTED:
                        continue  # this CPU lacks the ISA
                    self.assertExit(p, OK)
                    report = json.loads(p.stdout)
                    res = report["result"]
                    st = res["output"]["stats"]
                    self.assertEqual((st["nan_count"], st["inf_count"]), (8, 0))
                    self.assertEqual(res["isa_ran"], "scalar")  # whatever host.isa says
                    o = np.load(out)
                    self.assertTrue(np.all(np.isnan(o[3, 1])))
                    self.assertEqual(int(np.isnan(o).sum()), 8)
                    if isa not in ("", "scalar"):
                        continue
                    p = run("forward", "--q", qn, "--k", self.k, "--v", self.v, "--backend", backend,
                            "--allow-nonfinite", "-q")
                    self.assertEqual("on the scalar reference kernels (the inputs hold a NaN or an inf)" in p.stdout,
                                     report["host"]["isa"] != "scalar", p.stdout)
        # The same finite files with --allow-nonfinite run on the fast kernels.
        p, r = run_json("forward", "--q", self.q, "--k", self.k, "--v", self.v, "--allow-nonfinite")
        self.assertExit(p, OK)
        self.assertEqual(r["result"]["isa_ran"], r["host"]["isa"])

    def test_model_frames_non_finite(self):
        blob = self.path("model.rvne")
        self.assertExit(run("blob", "init", "--out", blob), OK)
        frames = np.random.default_rng(3).standard_normal((12, 16)).astype(np.float32)
        for value, index in ((np.nan, (7, 3)), (np.inf, (0, 15)), (-np.inf, (11, 0))):
            x = frames.copy()
            x[index] = value
            x[11, 15] = np.nan  # later, or the same row: the first in C order is reported
            f = self.save("x.npy", x)
            with self.subTest(value=value):
                p = run("forward", "--blob", blob, "--frames", f)
                self.assertExit(p, BAD_INPUT)
                self.assertEqual(p.stderr.strip(), self.nonfinite_message(f, x, index))
                p, r = run_json("forward", "--blob", blob, "--frames", f, "--allow-nonfinite")
                self.assertExit(p, OK)
                st = r["result"]["output"]["stats"]
                self.assertGreater(st["nan_count"] + st["inf_count"], 0)
                self.assertEqual(r["result"]["isa_ran"], "scalar")  # the layers took the reference kernels
                p = run("forward", "--blob", blob, "--frames", f, "--allow-nonfinite", "-q")
                self.assertEqual("on the scalar reference kernels (the inputs hold a NaN or an inf)" in p.stdout,
                                 r["host"]["isa"] != "scalar", p.stdout)
        # Finite frames are unaffected by the flag, and run on the fast kernels.
        f = self.save("ok.npy", frames)
        p, a = run_json("forward", "--blob", blob, "--frames", f)
        b = self.fwd("--blob", blob, "--frames", f, "--allow-nonfinite")
        self.assertEqual(a["result"]["output"]["xxh3"], b["output"]["xxh3"])
        self.assertEqual(a["result"]["isa_ran"], a["host"]["isa"])
        self.assertEqual(b["isa_ran"], a["host"]["isa"])

    def test_empty_sequence(self):
        e = self.save("e.npy", np.zeros((0, 2, 8), np.float32))
        out = self.path("eo.npy")
        for backend in ("sparse", "dense"):
            with self.subTest(backend=backend):
                res = self.fwd("--q", e, "--k", e, "--v", e, "--backend", backend, "--out", out)
                self.assertEqual(res["shape"]["seq"], 0)
                self.assertEqual(res["edges"]["per_head"], 0)
                a = np.load(out)
                self.assertEqual((a.shape, a.dtype), ((0, 2, 8), np.float32))
                os.remove(out)


# ---------------------------------------------------------------------------------------------
# Text output and --out-report
# ---------------------------------------------------------------------------------------------

class TestReportOutputs(ForwardCase):
    def test_text_output(self):
        p = run("forward", "--preset", "bench", "--seq", 256)
        self.assertExit(p, OK)
        self.assertEqual(p.stderr, "")
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0], "sparse attention: seq 256, heads 4:4, dim 32")
        self.assertEqual(lines[1], "edges per head 5672 of 32896 dense (sparsity 0.8276)")
        self.assertRegex(lines[2], r"^wall [0-9.]+ ms, output xxh3 [0-9a-f]{16}$")

    def test_out_report_is_the_json_envelope(self):
        rep = self.path("report.json")
        p = run("forward", "--preset", "aether", "--seq", 64, "--out-report", rep)
        self.assertExit(p, OK)
        self.assertTrue(p.stdout.startswith("sparse attention: seq 64"))  # text still on stdout
        r = read_json(rep)
        self.assertEnvelope(r, "forward", 0)
        self.assertEqual(r["result"]["edges"]["per_head"], 1714)
        _, r2 = run_json("forward", "--preset", "aether", "--seq", 64)
        self.assertEqual(r["result"]["output"]["xxh3"], r2["result"]["output"]["xxh3"])
        self.assertEqual(set(r["result"]), set(r2["result"]))
        # a failing run still writes its report, with the exit code
        rep2 = self.path("fail.json")
        p = run("forward", "--seq", 8, "--backend", "bogus", "--out-report", rep2)
        self.assertExit(p, USAGE)
        r = read_json(rep2)
        self.assertEnvelope(r, "forward", USAGE)


if __name__ == "__main__":
    main()
