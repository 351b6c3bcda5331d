"""CLI tests of `rvtemporal stream`: token-by-token decode against a KV cache, and the temporal
head run online. Exact exit codes, JSON fields, and the streamed rows checked against `forward`
with NumPy (always /usr/bin/python3, see CMakeLists.txt RVT_PYTHON)."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rvt_cli import *  # noqa: E402,F401,F403

C7_STREAM = os.path.join(DATA, "upstream", "c7", "out_stream.npy")
GQA = ("--q-heads", "28", "--kv-heads", "4", "--dim", "32", "--seq", "100", "--window", "8", "--block", "16")


def max_abs(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def rel_l1(a, ref):
    a, ref = np.asarray(a, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    return float(np.sum(np.abs(a - ref)) / np.sum(np.abs(ref)))


class StreamCase(CliTestCase):
    def stream_json(self, *args, code=OK):
        p, r = run_json("stream", *args)
        self.assertExit(p, code)
        self.assertEnvelope(r, "stream", code)
        return r["result"] if code == OK else r

    def rows(self, command, *args, name=None):
        """Runs `command ... --out X.npy` and returns the array it wrote."""
        out = self.path(name or f"{command}-{len(os.listdir(self.tmp))}.npy")
        p = run(command, *args, "--out", out)
        self.assertExit(p, OK)
        a = np.load(out)
        self.assertEqual(a.dtype, np.float32)
        return a

    def save(self, name, array):
        p = self.path(name)
        np.save(p, np.ascontiguousarray(array))
        return p


class TestAttentionStream(StreamCase):
    def test_bench_report(self):
        r = self.stream_json("--preset", "bench", "--seq", "300")
        self.assertEqual(r["mode"], "attention")
        self.assertEqual(r["backend"], "sparse")
        self.assertEqual(r["tokens"], 300)
        self.assertEqual(r["shape"], {"seq": 300, "q_heads": 4, "kv_heads": 4, "head_dim": 32})
        self.assertEqual((r["config"]["window"], r["config"]["block_size"]), (16, 32))
        lat = r["latency"]
        self.assertGreater(lat["p50_ns"], 0)
        self.assertLessEqual(lat["p50_ns"], lat["p90_ns"])
        self.assertLessEqual(lat["p90_ns"], lat["p99_ns"])
        self.assertLessEqual(lat["p99_ns"], lat["max_ns"])
        self.assertGreater(lat["mean_ns"], 0)
        self.assertGreater(lat["tokens_per_s"], 0)
        # tokens/s is over the summed step time: tokens / (mean_ns * tokens) * 1e9.
        self.assertAlmostEqual(lat["tokens_per_s"] * lat["mean_ns"] / 1e9, 1.0, places=6)
        self.assertLess(r["parity"]["max_abs_err"], 1e-5)
        self.assertLessEqual(r["parity"]["mean_abs_err"], r["parity"]["max_abs_err"])
        self.assertEqual(r["parity"]["against"], "forward")
        c = r["cache"]
        self.assertGreater(c["bytes"], 0)
        self.assertEqual(c["kv_dtype"], "f32")
        self.assertEqual((c["capacity"], c["evict"], c["len_at_end"], c["evicted"]), (300, "none", 300, 0))
        self.assertEqual(c["kv_bytes_f32"], 2 * 300 * 4 * 32 * 4)
        self.assertEqual(c["kv_bytes_f16"], 2 * 300 * 4 * 32 * 2)
        self.assertGreaterEqual(c["bytes"], c["kv_bytes_f32"])
        self.assertIsNone(r["output"]["path"])
        self.assertEqual(r["output"]["stats"]["count"], 300 * 4 * 32)

    def test_text_output(self):
        p = run("stream", "--preset", "bench", "--seq", "50")
        self.assertExit(p, OK)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 2, p.stdout)
        self.assertTrue(lines[0].startswith("sparse decode: 50 steps, p50 "), lines[0])
        self.assertIn("tokens/s, cache ", lines[0])
        self.assertTrue(lines[1].startswith("parity vs forward: max abs err "), lines[1])
        self.assertEqual(p.stderr, "")

    def test_text_output_says_eviction_makes_parity_approximate(self):
        p = run("stream", "--preset", "aether", "--seq", "100", "--capacity", "48", "--evict", "h2o")
        self.assertExit(p, OK)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 2, p.stdout)
        self.assertTrue(lines[1].startswith("parity vs forward: max abs err "), lines[1])
        self.assertTrue(lines[1].endswith(" (52 evictions: rows from the first one on approximate the forward)"), lines[1])
        with_room = run("stream", "--preset", "aether", "--seq", "100", "--capacity", "100", "--evict", "h2o")
        self.assertExit(with_room, OK)
        self.assertNotIn("evictions", with_room.stdout)

    def test_no_parity(self):
        r = self.stream_json("--preset", "bench", "--seq", "40", "--no-parity")
        self.assertIsNone(r["parity"])
        self.assertEqual(r["tokens"], 40)

    def assertStreamEqualsForward(self, *args, tol=1e-5):
        streamed = self.rows("stream", *args)
        full = self.rows("forward", *args)
        self.assertEqual(streamed.shape, full.shape)
        self.assertLess(max_abs(streamed, full), tol)
        return streamed

    def test_out_equals_forward_mha(self):
        a = self.assertStreamEqualsForward("--preset", "bench", "--seq", "300")
        self.assertEqual(a.shape, (300, 4, 32))

    def test_out_equals_forward_mqa(self):
        a = self.assertStreamEqualsForward("--preset", "aether", "--seq", "300")
        self.assertEqual(a.shape, (300, 4, 32))

    def test_out_equals_forward_gqa_7_to_1(self):
        a = self.assertStreamEqualsForward(*GQA)
        self.assertEqual(a.shape, (100, 28, 32))

    def test_out_equals_forward_from_files_and_landmark_mass(self):
        rng = np.random.default_rng(7)
        q = self.save("q.npy", rng.standard_normal((90, 6, 16), dtype=np.float32))
        k = self.save("k.npy", rng.standard_normal((90, 2, 16), dtype=np.float32))
        v = self.save("v.npy", rng.standard_normal((90, 2, 16), dtype=np.float32))
        args = ("--q", q, "--k", k, "--v", v, "--window", "6", "--block", "8", "--globals", "0,40",
                "--landmarks", "mass")
        a = self.assertStreamEqualsForward(*args)
        self.assertEqual(a.shape, (90, 6, 16))
        r = self.stream_json(*args)
        self.assertEqual(r["inputs"]["source"], "files")
        self.assertLess(r["parity"]["max_abs_err"], 1e-5)

    def test_reference_stream_c7(self):
        ref = np.load(C7_STREAM)
        self.assertEqual(ref.shape, (777, 4, 32))
        out = self.rows("stream", "--gen", "normal", "--seed", "0x5EED0007", "--seq", "777", "--preset", "aether")
        self.assertLess(max_abs(out, ref), 1e-5)
        # A different seed is a different stream: the comparison can fail.
        other = self.rows("stream", "--gen", "normal", "--seed", "0x5EED0008", "--seq", "777", "--preset", "aether")
        self.assertGreater(max_abs(other, ref), 0.1)

    def test_non_causal_rows_are_the_last_row_of_each_prefix(self):
        rng = np.random.default_rng(3)
        q = rng.standard_normal((60, 2, 8), dtype=np.float32)
        k = rng.standard_normal((60, 1, 8), dtype=np.float32)
        v = rng.standard_normal((60, 1, 8), dtype=np.float32)
        cfg = ("--window", "4", "--block", "8", "--globals", "0,30", "--no-causal")
        files = ("--q", self.save("q.npy", q), "--k", self.save("k.npy", k), "--v", self.save("v.npy", v))
        r = self.stream_json(*files, *cfg)
        self.assertLess(r["parity"]["max_abs_err"], 1e-5)
        self.assertIn("prefix", r["parity"]["against"])
        streamed = self.rows("stream", *files, *cfg)
        full = self.rows("forward", *files, *cfg)
        self.assertGreater(max_abs(streamed, full), 1e-2)  # the full forward's rows also see later tokens
        for n in (1, 9, 31, 60):
            pre = ("--q", self.save("pq.npy", q[:n]), "--k", self.save("pk.npy", k[:n]),
                   "--v", self.save("pv.npy", v[:n]))
            last = self.rows("forward", *pre, *cfg)[n - 1]
            self.assertLess(max_abs(streamed[n - 1], last), 1e-5, f"prefix {n}")

    def test_kv_dtype_f16(self):
        args = ("--preset", "bench", "--seq", "300")
        r32 = self.stream_json(*args)
        r16 = self.stream_json(*args, "--kv-dtype", "f16")
        c32, c16 = r32["cache"], r16["cache"]
        self.assertEqual(c16["kv_dtype"], "f16")
        self.assertEqual(c16["kv_bytes_f32"], c32["kv_bytes_f32"])
        self.assertEqual(c16["kv_bytes_f32"] - c16["kv_bytes_f16"], c16["kv_bytes_f32"] // 2)
        self.assertEqual(c32["bytes"] - c16["bytes"], c32["kv_bytes_f32"] // 2)
        self.assertLess(r16["parity"]["max_abs_err"], 1e-2)
        a32 = self.rows("stream", *args)
        a16 = self.rows("stream", *args, "--kv-dtype", "f16")
        self.assertLess(rel_l1(a16, a32), 1e-3)
        self.assertGreater(max_abs(a16, a32), 0.0)  # the cache really holds halves

    def test_dense_backend_baseline(self):
        r = self.stream_json("--preset", "bench", "--seq", "200", "--backend", "dense")
        self.assertEqual(r["backend"], "dense")
        self.assertLess(r["parity"]["max_abs_err"], 1e-6)
        self.assertEqual(r["tokens"], 200)
        streamed = self.rows("stream", "--preset", "bench", "--seq", "200", "--backend", "dense")
        dense = self.rows("forward", "--preset", "bench", "--seq", "200", "--backend", "dense")
        sparse = self.rows("forward", "--preset", "bench", "--seq", "200")
        self.assertLess(max_abs(streamed, dense), 1e-6)
        self.assertGreater(max_abs(streamed, sparse), 1e-3)  # it is not the sparse decode

    def test_long_dense_stream_is_announced(self):
        # One head at dim 1, the decode and the dense forward it is checked against: 4 N (N + 1)
        # = 1.02e13 float operations, past the 1e13 a dense job announces; killed once it has.
        line = first_stderr_line("stream", "--backend", "dense", "--seq", 1600000, "--q-heads", 1, "--kv-heads", 1,
                                 "--dim", 1)
        self.assertEqual(line, "warning: stream: dense decode (and the dense forward it is checked against) over "
                               "1600000 tokens: 1.02e+13 float operations (the sparse backend's: 2e+09); nothing more "
                               "is printed until it ends")
        # Without the check, the decode alone: 2 N (N + 1).
        line = first_stderr_line("stream", "--backend", "dense", "--seq", 2300000, "--q-heads", 1, "--kv-heads", 1,
                                 "--dim", 1, "--no-parity")
        self.assertEqual(line, "warning: stream: dense decode over 2300000 tokens: 1.06e+13 float operations (the "
                               "sparse backend's: 1.45e+09); nothing more is printed until it ends")

    def test_threads_change_nothing_but_the_time(self):
        # --threads fills the generated inputs and runs the forward parity compares with; the
        # decode is one thread. Every value is the same (70000 values a tensor: more than one
        # of the generator's runs; GQA and the structured generator included).
        outs = [self.stream_json("--preset", "bench", "--seq", "700", "--kv-heads", "2", "--gen", gen, "--threads", t)
                for gen in ("normal", "structured") for t in ("1", "2", "3")]
        for r, t in zip(outs, (1, 2, 3) * 2):
            self.assertEqual(r["threads"], t)
        for a, b in ((outs[0], outs[1]), (outs[0], outs[2]), (outs[3], outs[4]), (outs[3], outs[5])):
            self.assertEqual(a["output"]["xxh3"], b["output"]["xxh3"])
            self.assertEqual(a["parity"], b["parity"])
        self.assertNotEqual(outs[0]["output"]["xxh3"], outs[3]["output"]["xxh3"])
        # Non-causal: the parity reference (the last row of each prefix) is split between workers.
        nc = [self.stream_json("--preset", "bench", "--seq", "700", "--no-causal", "--threads", t) for t in ("1", "2", "3")]
        for r in nc[1:]:
            self.assertEqual(r["parity"], nc[0]["parity"])
            self.assertEqual(r["output"]["xxh3"], nc[0]["output"]["xxh3"])
        self.assertEqual(nc[0]["parity"]["against"], "forward over each prefix, last row (non-causal)")
        self.assertLess(nc[0]["parity"]["max_abs_err"], 1e-5)
        r = self.stream_json("--preset", "bench", "--seq", "40")
        self.assertGreaterEqual(r["threads"], 1)  # default: every core
        for bad in ("-1", "x", ""):
            p = run("stream", "--seq", "10", "--threads", bad)
            self.assertExit(p, USAGE)

    def test_jsonl(self):
        p = run("stream", "--preset", "aether", "--seq", "70", "--jsonl")
        self.assertExit(p, OK)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 71)
        records = [json.loads(line) for line in lines]
        for t, rec in enumerate(records[:-1]):
            self.assertEqual(rec["type"], "step")
            self.assertEqual(rec["t"], t)
            self.assertGreater(rec["latency_ns"], 0)
            self.assertEqual(rec["cache_len"], t + 1)
            self.assertEqual(rec["evicted"], 0)
            self.assertGreaterEqual(rec["edges_per_head"], 1)
        final = records[-1]
        self.assertEnvelope(final, "stream", 0)
        self.assertEqual(final["result"]["tokens"], 70)
        self.assertLess(final["result"]["parity"]["max_abs_err"], 1e-5)
        # The step latencies are the ones the report summarises.
        self.assertEqual(max(r["latency_ns"] for r in records[:-1]), final["result"]["latency"]["max_ns"])
        # The summary a person reads goes to stderr, so stdout stays pure JSONL.
        self.assertIn("sparse decode: 70 steps", p.stderr)

    def test_jsonl_failure_still_ends_with_the_report(self):
        # Before the first step: no step records, the report line only.
        p = run("stream", "--preset", "aether", "--seq", "640", "--capacity", "64", "--jsonl")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "eviction")
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 1, p.stdout)
        final = json.loads(lines[0])
        self.assertEnvelope(final, "stream", USAGE)
        self.assertIn("eviction", final["error"]["message"])
        # An --out whose directory is missing is refused before the first step.
        p = run("stream", "--preset", "aether", "--seq", "3", "--jsonl", "--out",
                os.path.join(self.tmp, "no-such-dir", "x.npy"))
        self.assertExit(p, IO)
        records = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual([r.get("type") for r in records], [None])
        self.assertIn("no-such-dir", records[-1]["error"]["message"])
        # After the last step (--out fails only when written: a full device): every step, then the report line.
        p = run("stream", "--preset", "aether", "--seq", "3", "--jsonl", "--out", "/dev/full")
        self.assertExit(p, IO)
        records = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual([r.get("type") for r in records], ["step", "step", "step", None])
        self.assertEnvelope(records[-1], "stream", IO)
        self.assertIn("/dev/full", records[-1]["error"]["message"])

    def test_step_input_errors(self):
        rng = np.random.default_rng(1)
        good_q = self.save("q.npy", rng.standard_normal((10, 4, 8), dtype=np.float32))
        good_kv = self.save("kv.npy", rng.standard_normal((10, 2, 8), dtype=np.float32))
        bad = {
            "k heads differ from v": ("--q", good_q, "--k", good_kv,
                                      "--v", self.save("v3.npy", np.zeros((10, 1, 8), np.float32))),
            "seq differs": ("--q", good_q, "--k", good_kv,
                            "--v", self.save("v9.npy", np.zeros((9, 2, 8), np.float32))),
            "dim differs": ("--q", self.save("q16.npy", np.zeros((10, 4, 16), np.float32)), "--k", good_kv,
                            "--v", good_kv),
            "not a GQA multiple": ("--q", self.save("q3.npy", np.zeros((10, 3, 8), np.float32)), "--k", good_kv,
                                   "--v", good_kv),
            "2-d q": ("--q", self.save("q2d.npy", np.zeros((10, 32), np.float32)), "--k", good_kv,
                      "--v", good_kv),
        }
        for what, args in bad.items():
            with self.subTest(what):
                p = run("stream", *args, "--window", "4", "--block", "8")
                self.assertExit(p, BAD_INPUT)
                self.assertOneLineError(p)
        p = run("stream", "--q", good_q, "--k", good_kv, "--v", good_kv, "--window", "4", "--block", "8")
        self.assertExit(p, OK)
        p = run("stream", "--q", good_q, "--window", "4", "--block", "8")
        self.assertExit(p, USAGE)
        p = run("stream", "--q", self.path("missing.npy"), "--k", good_kv, "--v", good_kv)
        self.assertExit(p, IO)


    def test_non_finite_inputs(self):
        rng = np.random.default_rng(2)
        q = rng.standard_normal((12, 4, 8), dtype=np.float32)
        kv = rng.standard_normal((12, 2, 8), dtype=np.float32)
        good_q, good_kv = self.save("q.npy", q), self.save("kv.npy", kv)
        for which, value, index in (("q", np.nan, (5, 3, 7)), ("k", np.inf, (0, 0, 0)), ("v", -np.inf, (11, 1, 2))):
            a = (q if which == "q" else kv).copy()
            a[index] = value
            a[-1, -1, -1] = np.nan  # later (or the same element): the first in C order is named
            bad = self.save(f"{which}-bad.npy", a)
            files = {"q": good_q, "k": good_kv, "v": good_kv, which: bad}
            args = ("--q", files["q"], "--k", files["k"], "--v", files["v"], "--window", "4", "--block", "4")
            flat = int(np.ravel_multi_index(index, a.shape))
            text = "nan" if np.isnan(value) else "inf" if value > 0 else "-inf"
            want = (f"rvtemporal: error: {bad}: non-finite value {text} at [{index[0]}, {index[1]}, {index[2]}] "
                    f"(element {flat} of {a.size}); pass --allow-nonfinite to propagate it")
            with self.subTest(which=which):
                out = self.path("rows.npy")
                p = run("stream", *args, "--out", out)
                self.assertExit(p, BAD_INPUT)
                self.assertEqual(p.stderr.strip(), want)
                self.assertFalse(os.path.exists(out))
                # --jsonl: no step ran; stdout is the report line alone.
                p = run("stream", *args, "--jsonl")
                self.assertExit(p, BAD_INPUT)
                lines = p.stdout.splitlines()
                self.assertEqual(len(lines), 1, p.stdout)
                self.assertEnvelope(json.loads(lines[0]), "stream", BAD_INPUT)
                # --allow-nonfinite: the values propagate through the decode and are counted.
                r = self.stream_json(*args, "--allow-nonfinite", "--out", out)
                rows = np.load(out)
                st = r["output"]["stats"]
                self.assertEqual(st["nan_count"], int(np.isnan(rows).sum()))
                self.assertEqual(st["inf_count"], int(np.isinf(rows).sum()))
                self.assertGreater(st["nan_count"] + st["inf_count"], 0)
                # Parity: errors over the finite pairs; the NaN/inf pairs counted, and the stream
                # puts them where the forward pass does (an inf in K once became NaN in a
                # running block mean, and 320 pairs differed).
                par = r["parity"]
                self.assertEqual(par["nonfinite_pairs"], st["nan_count"] + st["inf_count"])
                self.assertEqual(par["nonfinite_mismatches"], 0)
                self.assertIsInstance(par["mean_abs_err"], float)
                self.assertLess(par["max_abs_err"], 1e-5)
                os.remove(out)
                # The steps whose q or cache held a NaN or an inf took the scalar reference: the
                # q rows 5 and 11, the V row 11, and from the K row 0 on every step.
                scalar = {"q": 2, "k": 12, "v": 1}[which]
                self.assertEqual(r["scalar_steps"], scalar)
                p, e = run_json("stream", *args, "--allow-nonfinite")
                self.assertEqual(e["result"]["isa_ran"], "scalar" if scalar == 12 else e["host"]["isa"])
                p = run("stream", *args, "--allow-nonfinite", "-q")
                self.assertEqual(f"{scalar} {'step' if scalar == 1 else 'steps'} on the scalar reference kernels" in p.stdout,
                                 e["host"]["isa"] != "scalar", p.stdout)
        # Finite inputs: every step on the fast kernels; --isa scalar: every step on the reference.
        for isa in ("", "scalar"):
            with self.subTest(isa=isa), isa_env(isa):
                p, e = run_json("stream", "--q", good_q, "--k", good_kv, "--v", good_kv)
                self.assertExit(p, OK)
                want = 12 if e["host"]["isa"] == "scalar" else 0
                self.assertEqual((e["result"]["isa_ran"], e["result"]["scalar_steps"]), (e["host"]["isa"], want))
                self.assertNotIn("on the scalar reference kernels", run("stream", "--q", good_q, "--k", good_kv,
                                                                              "--v", good_kv).stdout)

class TestEviction(StreamCase):
    def test_h2o_ten_times_capacity(self):
        r = self.stream_json("--preset", "aether", "--seq", "640", "--capacity", "64", "--evict", "h2o")
        c = r["cache"]
        self.assertEqual((c["capacity"], c["evict"], c["len_at_end"], c["evicted"]), (64, "h2o", 64, 576))
        self.assertEqual(r["tokens"], 640)
        self.assertEqual(r["output"]["stats"]["nan_count"], 0)
        self.assertEqual(r["output"]["stats"]["inf_count"], 0)
        # Bounded memory: the cache of a 640-token stream is the cache of a 64-token one.
        small = self.stream_json("--preset", "aether", "--seq", "64")
        self.assertEqual(c["bytes"], small["cache"]["bytes"])

    def test_h2o_jsonl_cache_never_exceeds_capacity(self):
        p = run("stream", "--preset", "aether", "--seq", "200", "--capacity", "48", "--evict", "h2o", "--jsonl")
        self.assertExit(p, OK)
        steps = [json.loads(line) for line in p.stdout.splitlines()[:-1]]
        self.assertEqual(len(steps), 200)
        self.assertEqual([s["cache_len"] for s in steps], [min(t + 1, 48) for t in range(200)])
        self.assertEqual([s["evicted"] for s in steps], [max(0, t + 1 - 48) for t in range(200)])

    def test_h2o_with_room_changes_nothing(self):
        plain = self.rows("stream", "--preset", "aether", "--seq", "300")
        h2o = self.rows("stream", "--preset", "aether", "--seq", "300", "--evict", "h2o")
        self.assertEqual(max_abs(plain, h2o), 0.0)
        evicting = self.rows("stream", "--preset", "aether", "--seq", "300", "--evict", "h2o", "--capacity", "100")
        self.assertEqual(max_abs(plain[:100], evicting[:100]), 0.0)  # identical until the first eviction
        self.assertGreater(max_abs(plain, evicting), 0.0)

    def test_capacity_exceeded_without_eviction(self):
        p = run("stream", "--preset", "aether", "--seq", "640", "--capacity", "64")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "eviction", "--evict h2o", "640", "64")
        self.assertEqual(p.stdout, "")
        p = run("stream", "--preset", "aether", "--seq", "64", "--capacity", "64")
        self.assertExit(p, OK)

    def test_h2o_needs_capacity_above_window_and_globals(self):
        # aether: window 32, globals [0] -> capacity must exceed 33.
        for cap in ("32", "33"):
            with self.subTest(capacity=cap):
                p = run("stream", "--preset", "aether", "--seq", "100", "--capacity", cap, "--evict", "h2o")
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, "h2o", "window + globals")
        p = run("stream", "--preset", "aether", "--seq", "100", "--capacity", "34", "--evict", "h2o")
        self.assertExit(p, OK)
        # Globals are a set: "0,0,0" is one global token, so 34 is room enough for it too.
        p, r = run_json("stream", "--preset", "aether", "--seq", "100", "--capacity", "34", "--evict", "h2o",
                        "--globals", "0,0,0")
        self.assertExit(p, OK)
        self.assertEqual(r["result"]["config"]["globals"], [0])

    def test_h2o_with_dense_backend(self):
        p = run("stream", "--preset", "aether", "--seq", "100", "--capacity", "64", "--evict", "h2o",
                "--backend", "dense")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--evict", "sparse")

    def test_bad_option_values(self):
        for args, fragment in ((("--evict", "bogus"), "--evict"), (("--kv-dtype", "bogus"), "--kv-dtype"),
                               (("--backend", "bogus"), "bogus"), (("--preset", "bogus"), "--preset")):
            with self.subTest(args=args):
                p = run("stream", "--seq", "10", *args)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, fragment, "bogus")
                r = self.stream_json("--seq", "10", *args, code=USAGE)
                self.assertIn("bogus", r["error"]["message"])


class TestModelStream(StreamCase):
    def setUp(self):
        super().setUp()
        self.blob = self.path("model.rvne")
        self.assertExit(run("blob", "init", "--out", self.blob), OK)

    def test_options_the_head_does_not_use_are_named(self):
        p = run("stream", "--blob", self.blob, "--gen-frames", "20", "--no-parity", "--kv-heads", "2", "--no-log-stride")
        self.assertExit(p, OK)
        self.assertEqual(p.stderr.splitlines(), [
            "warning: stream: --kv-heads, --no-log-stride have no effect with --blob (the temporal head takes its "
            "heads and dim from the blob, its pattern is globals [0], log-stride and mean landmarks)"])

    def test_report(self):
        r = self.stream_json("--blob", self.blob, "--gen-frames", "40")
        self.assertEqual(r["mode"], "model")
        self.assertEqual(r["backend"], "sparse")
        self.assertEqual(r["frames"], dict(source="generated", generator="normal", seed="0000000000005eed", count=40))
        self.assertEqual(r["tokens"], 40)
        self.assertEqual(r["head"], dict(input_dim=16, q_heads=4, kv_heads=1, head_dim=32, layers=2, classes=4,
                                         window=32, block_size=16, causal=True))
        self.assertLess(r["parity"]["max_abs_err"], 1e-5)
        self.assertEqual(r["parity"]["against"], "forward, last-token pooling per frame")
        # A non-causal two-layer head is checked against forwards over each prefix, which it
        # cannot equal (docs/streaming.md), and the report says which comparison it made.
        nc = self.stream_json("--blob", self.blob, "--gen-frames", "40", "--no-causal")
        self.assertEqual(nc["parity"]["against"], "forward over each prefix, last-token pooling (non-causal)")
        self.assertGreater(nc["parity"]["max_abs_err"], 1e-4)
        self.assertEqual(len(r["final_logits"]), 4)
        self.assertEqual(r["blob"]["xxh3_file"], "7dfd4dd2b7a1928e")
        c = r["cache"]
        self.assertEqual((c["capacity"], c["len_at_end"], c["evicted"], c["kv_dtype"]), (40, 40, 0, "f32"))
        self.assertGreater(c["bytes"], 0)
        self.assertGreater(r["latency"]["p50_ns"], 0)
        fwd_p, fwd = run_json("forward", "--blob", self.blob, "--gen-frames", "40", "--pool", "last")
        self.assertExit(fwd_p, OK)
        self.assertLess(max_abs(r["final_logits"], fwd["result"]["logits"]), 1e-5)

    def test_threads_change_nothing_but_the_time(self):
        a = self.stream_json("--blob", self.blob, "--gen-frames", "3000", "--threads", "1")
        b = self.stream_json("--blob", self.blob, "--gen-frames", "3000", "--threads", "2")
        self.assertEqual((a["threads"], b["threads"]), (1, 2))
        self.assertEqual(a["output"]["xxh3"], b["output"]["xxh3"])
        self.assertEqual(a["parity"], b["parity"])

    def test_out_last_row_equals_forward_last_pooling(self):
        logits = self.rows("stream", "--blob", self.blob, "--gen-frames", "40")
        self.assertEqual(logits.shape, (40, 4))
        last = self.rows("forward", "--blob", self.blob, "--gen-frames", "40", "--pool", "last")
        self.assertEqual(last.shape, (4,))
        self.assertLess(max_abs(logits[-1], last), 1e-5)
        # Row t is the logits of the stream that ended at frame t: not all rows are alike.
        self.assertGreater(max_abs(logits[0], logits[-1]), 1e-3)
        # A shorter stream of the same frames (the generator fills frames in order) gives the same rows.
        self.assertLess(max_abs(self.rows("stream", "--blob", self.blob, "--gen-frames", "20"), logits[:20]), 1e-7)

    def test_frames_file(self):
        frames = np.random.default_rng(5).standard_normal((25, 16), dtype=np.float32)
        f = self.save("frames.npy", frames)
        logits = self.rows("stream", "--blob", self.blob, "--frames", f)
        self.assertEqual(logits.shape, (25, 4))
        for n in (1, 12, 25):
            last = self.rows("forward", "--blob", self.blob, "--frames", self.save("fp.npy", frames[:n]),
                             "--pool", "last")
            self.assertLess(max_abs(logits[n - 1], last), 1e-5, f"prefix {n}")

    def test_f16_and_eviction(self):
        r = self.stream_json("--blob", self.blob, "--gen-frames", "40", "--kv-dtype", "f16")
        self.assertEqual(r["cache"]["kv_dtype"], "f16")
        self.assertLess(r["parity"]["max_abs_err"], 1e-2)
        r32 = self.stream_json("--blob", self.blob, "--gen-frames", "40")
        self.assertLess(r["cache"]["bytes"], r32["cache"]["bytes"])
        r = self.stream_json("--blob", self.blob, "--gen-frames", "200", "--capacity", "50", "--evict", "h2o")
        self.assertEqual((r["cache"]["len_at_end"], r["cache"]["evicted"]), (50, 150))
        p = run("stream", "--blob", self.blob, "--gen-frames", "200", "--capacity", "50")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "eviction")

    def test_long_dense_head_stream_is_announced(self):
        # The default blob's head: 2 layers x 4 heads x dim 32. The causal decode and the forward
        # it is checked against: 4 N (N + 1) x 256, 1e13 from N = 98821.
        line = first_stderr_line("stream", "--blob", self.blob, "--backend", "dense", "--dense-baseline",
                                 "--gen-frames", 98821)
        self.assertRegex(line, r"^warning: stream: temporal head \(2 layers\), dense decode \(and the dense forward "
                               r"it is checked against\) over 98821 tokens: 1e\+13 float operations \(the sparse "
                               r"backend's: [0-9.e+]+\); nothing more is printed until it ends$")
        # A non-causal head is checked against a forward over each prefix: N^3 / 3 edges, no sparse count.
        line = first_stderr_line("stream", "--blob", self.blob, "--backend", "dense", "--dense-baseline",
                                 "--no-causal", "--gen-frames", 3082)
        self.assertEqual(line, "warning: stream: temporal head (2 layers), dense decode (and the dense forward over "
                               "each prefix it is checked against) over 3082 tokens: 1e+13 float operations; nothing "
                               "more is printed until it ends")

    def test_dense_head_does_not_stream(self):
        p = run("stream", "--blob", self.blob, "--gen-frames", "40", "--backend", "dense")
        self.assertExit(p, UNSUPPORTED)
        self.assertOneLineError(p, "backend does not support streaming")
        r = self.stream_json("--blob", self.blob, "--gen-frames", "40", "--backend", "dense", code=UNSUPPORTED)
        self.assertIn("backend does not support streaming", r["error"]["message"])
        r = self.stream_json("--blob", self.blob, "--gen-frames", "40", "--backend", "dense", "--dense-baseline")
        self.assertEqual(r["backend"], "dense")
        self.assertLess(r["parity"]["max_abs_err"], 1e-5)
        fwd_p, fwd = run_json("forward", "--blob", self.blob, "--gen-frames", "40", "--pool", "last",
                              "--backend", "dense")
        self.assertExit(fwd_p, OK)
        self.assertLess(max_abs(r["final_logits"], fwd["result"]["logits"]), 1e-5)
        p = run("stream", "--blob", self.blob, "--gen-frames", "40", "--backend", "dense", "--dense-baseline",
                "--evict", "h2o", "--capacity", "39")
        self.assertExit(p, USAGE)

    def test_non_finite_frames(self):
        frames = np.random.default_rng(9).standard_normal((20, 16), dtype=np.float32)
        for value, index in ((np.nan, (4, 9)), (np.inf, (0, 0)), (-np.inf, (19, 15))):
            x = frames.copy()
            x[index] = value
            x[19, 15] = x[19, 15] if index == (19, 15) else np.nan  # a later one is not named
            f = self.save("x.npy", x)
            flat = index[0] * 16 + index[1]
            text = "nan" if np.isnan(value) else "inf" if value > 0 else "-inf"
            with self.subTest(value=value):
                p = run("stream", "--blob", self.blob, "--frames", f)
                self.assertExit(p, BAD_INPUT)
                self.assertEqual(p.stderr.strip(),
                                 f"rvtemporal: error: {f}: non-finite value {text} at [{index[0]}, {index[1]}] "
                                 f"(element {flat} of 320); pass --allow-nonfinite to propagate it")
                p, e = run_json("stream", "--blob", self.blob, "--frames", f, "--allow-nonfinite")
                self.assertExit(p, OK)
                st = e["result"]["output"]["stats"]
                self.assertGreater(st["nan_count"] + st["inf_count"], 0)
                # Every frame from the first non-finite one on: its value stays in the caches.
                scalar = 20 - index[0]
                self.assertEqual(e["result"]["scalar_steps"], scalar)
                self.assertEqual(e["result"]["isa_ran"], "scalar" if scalar == 20 else e["host"]["isa"])

    def test_input_errors(self):
        wrong = self.save("wrong.npy", np.zeros((10, 8), np.float32))
        p = run("stream", "--blob", self.blob, "--frames", wrong)
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p)
        p = run("stream", "--blob", self.path("missing.rvne"), "--gen-frames", "10")
        self.assertExit(p, IO)
        self.assertOneLineError(p, "missing.rvne")
        with open(self.blob, "rb") as f:
            data = bytearray(f.read())
        data[len(data) // 2] ^= 0x01
        bad = self.path("corrupt.rvne")
        with open(bad, "wb") as f:
            f.write(bytes(data))
        p = run("stream", "--blob", bad, "--gen-frames", "10")
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p, "corrupt.rvne")
        p = run("stream", "--blob", self.blob)
        self.assertExit(p, USAGE)
        p = run("stream", "--gen-frames", "10")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--blob")


if __name__ == "__main__":
    main()
