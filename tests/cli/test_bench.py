"""CLI tests of `rvtemporal bench`: exact exit codes, the report's structure and invariants
(edge counts and ratios, extrapolation flags, md/csv columns, the SVG), and --compare against
hand-made baselines. Small runs (--seq 64,128 --reps 2); no timed assertions.
"""
import copy
import csv
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rvt_cli import *  # noqa: E402,F401,F403

DEFAULTS = {"--seq": "64,128", "--reps": "2", "--warmup": "0", "--threads": "1", "--decode-at": "128",
            "--decode-steps": "16", "--dense-decode-steps": "8"}


def small(**overrides):
    """The small run's options; overrides as seq="32,64" or no_dense_above=64 (None drops one)."""
    opts = dict(DEFAULTS)
    for key, value in overrides.items():
        opts["--" + key.replace("_", "-")] = value
    args = []
    for key, value in opts.items():
        if value is not None:
            args += [key, str(value)]
    return tuple(args)


SMALL = small()
CPUS = sorted(os.sched_getaffinity(0))  # what the bench's child process may use too
CSV_COLUMNS = ["table", "n", "kernel", "isa", "extrapolated", "median", "min", "max", "stddev", "unit", "samples",
               "gflops", "pct_of_peak", "edges_per_head", "edge_ratio", "speedup_vs_dense", "fast_vs_ref", "rounds",
               "speedup_rounds_min", "speedup_rounds_max", "fast_vs_ref_rounds_min", "fast_vs_ref_rounds_max",
               "threads_speedup", "threads_speedup_rounds_min", "threads_speedup_rounds_max"]


def dense_edges(n):
    return n * (n + 1) // 2


def bench_json(*extra, **overrides):
    return run_json("bench", *small(**overrides), "-q", *extra)


class BenchReport(CliTestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc, cls.report = bench_json()

    def test_envelope(self):
        self.assertExit(self.proc, OK)
        self.assertEnvelope(self.report, "bench", 0)
        self.assertEqual(self.proc.stderr, "")  # -q: no progress

    def test_workload(self):
        r = self.report["result"]
        self.assertEqual(r["schema"], "rvtemporal.bench/1")
        self.assertEqual(r["preset"], "bench")
        self.assertEqual(r["shape"], {"q_heads": 4, "kv_heads": 4, "head_dim": 32})
        self.assertEqual(r["config"]["window"], 16)
        self.assertEqual(r["config"]["block_size"], 32)
        self.assertEqual(r["params"]["seqs"], [64, 128])
        self.assertEqual(r["params"]["reps"], 2)
        self.assertEqual(r["params"]["threads"], 1)

    def test_machine_block(self):
        m = self.report["result"]["machine"]
        for key in ("cpu_model", "cpu_id", "logical_cpus", "loadavg", "isa", "threads", "compiler", "build_type",
                    "git_commit", "timestamp_utc"):
            self.assertIn(key, m)
        self.assertEqual(sorted(m["cpu_id"]), ["family", "model", "stepping", "vendor"])
        with open("/proc/cpuinfo") as f:  # the first processor's numbers, as Linux gives them
            fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        self.assertEqual(m["cpu_id"]["family"], int(fields["cpu family"]) if "cpu family" in fields else None)
        self.assertEqual(m["cpu_id"]["model"], int(fields["model"]) if "model" in fields else None)
        self.assertEqual(m["cpu_id"]["vendor"], fields.get("vendor_id"))
        self.assertIn(m["isa"], ("scalar", "avx2", "avx512"))
        self.assertRegex(m["timestamp_utc"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        peak = self.report["result"]["fma_peak"]
        if m["isa"] == "scalar":
            self.assertFalse(peak["valid"])
            self.assertIsNone(peak["single_core_gflops"])
            self.assertEqual(peak["per_cpu_all_busy"], [])
        else:
            self.assertTrue(peak["valid"])
            self.assertGreater(peak["single_core_gflops"], 0)
            self.assertAlmostEqual(peak["reference_gflops"], peak["single_core_gflops"] * 1)
            cpus = peak["per_cpu_all_busy"]  # one entry per CPU the process may run on
            self.assertTrue(1 <= len(cpus) <= m["logical_cpus"], cpus)
            for c in cpus:
                self.assertGreater(c["gflops"], 0)
            pinned = [c["cpu"] for c in cpus if c["cpu"] >= 0]
            self.assertEqual(len(pinned), len(set(pinned)))

    def test_prefill_rows(self):
        r = self.report["result"]
        rows = r["prefill"]
        self.assertEqual([row["seq"] for row in rows], [64, 128])
        for row in rows:
            n = row["seq"]
            e = row["edges"]
            self.assertEqual(e["dense_per_head"], dense_edges(n))
            self.assertAlmostEqual(e["ratio"], e["dense_per_head"] / e["sparse_per_head"])
            self.assertEqual(row["speedup"]["ideal"], e["ratio"])
            for kernel in ("dense", "sparse", "sparse_ref"):
                k = row[kernel]
                self.assertTrue(k["attempted"])
                self.assertFalse(k["extrapolated"])
                self.assertEqual(len(k["samples_ms"]), 2)
                self.assertLessEqual(k["min_ms"], k["median_ms"])
                self.assertLessEqual(k["median_ms"], k["max_ms"])
                self.assertGreaterEqual(k["stddev_ms"], 0)
            self.assertEqual(row["sparse_ref"]["isa"], "scalar")
            self.assertEqual(row["dense"]["flops"], 4 * 32 * e["dense_per_head"] * 4)
            self.assertEqual(row["sparse"]["flops"], 4 * 32 * e["sparse_per_head"] * 4)
            self.assertAlmostEqual(row["speedup"]["measured"], row["dense"]["median_ms"] / row["sparse"]["median_ms"])
            self.assertAlmostEqual(row["fast_vs_ref"], row["sparse_ref"]["median_ms"] / row["sparse"]["median_ms"])
            self.assertGreater(row["peak_rss_bytes"], 0)
        self.assertGreater(r["peak_rss_bytes"], 0)
        for kernel in ("dense", "sparse", "sparse_ref"):
            self.assertTrue(r["fits"][kernel]["valid"])
            self.assertEqual(r["fits"][kernel]["points"], 2)

    def test_sparse_edges_match_forward(self):
        for row in self.report["result"]["prefill"]:
            p, fwd = run_json("forward", "--preset", "bench", "--seq", row["seq"], "--backend", "sparse",
                              "--threads", "1")
            self.assertExit(p, OK)
            self.assertEqual(fwd["result"]["edges"]["per_head"], row["edges"]["sparse_per_head"])

    def test_decode_rows(self):
        d = self.report["result"]["decode"]
        self.assertEqual(d["kv_dtype"], "f32")
        isa = self.report["result"]["machine"]["isa"]
        self.assertEqual((d["sparse_kernel"], d["dense_kernel"]), (isa, isa))
        self.assertEqual(len(d["rows"]), 1)
        row = d["rows"][0]
        self.assertEqual(row["t"], 128)
        for kernel, steps in (("sparse", 16), ("dense", 8)):
            self.assertEqual(row[kernel]["steps"], steps)
            self.assertEqual(row[kernel]["prefill"], 128 - steps)
            self.assertEqual(len(row[kernel]["samples_ns"]), steps)
            self.assertGreater(row[kernel]["median_ns"], 0)
        self.assertEqual(row["sparse_vs_first"], 1.0)
        self.assertEqual(self.report["result"]["params"]["kv_dtype"], "f32")

    def test_decode_over_an_f16_cache(self):
        p, report = bench_json("--kv-dtype", "f16", seq="64")
        self.assertExit(p, OK)
        r = report["result"]
        self.assertEqual((r["decode"]["kv_dtype"], r["params"]["kv_dtype"]), ("f16", "f16"))
        self.assertGreater(r["decode"]["rows"][0]["sparse"]["median_ns"], 0)
        p = run("bench", *small(seq="64"), "-q", "--kv-dtype", "f16")
        self.assertIn("decode step (f16 cache, median ns per token", p.stdout)
        p = run("bench", *small(seq="64"), "-q", "--kv-dtype", "f8")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--kv-dtype", "f8")


class BenchOutputs(CliTestCase):
    def test_extrapolated_dense(self):
        p, report = bench_json(seq="32,64,128", no_dense_above=64, decode_at="none")
        self.assertExit(p, OK)
        rows = report["result"]["prefill"]
        self.assertEqual([r["dense"]["attempted"] for r in rows], [True, True, False])
        self.assertEqual([r["dense"]["extrapolated"] for r in rows], [False, False, True])
        self.assertTrue(rows[2]["speedup"]["extrapolated"])
        # The largest measured N's time per dense edge, times the edges asked for.
        ratio = rows[2]["edges"]["dense_per_head"] / rows[1]["edges"]["dense_per_head"]
        self.assertAlmostEqual(rows[2]["dense"]["extrapolated_from"]["edges_ratio"], ratio, places=12)
        self.assertAlmostEqual(rows[2]["dense"]["median_ms"], rows[1]["dense"]["median_ms"] * ratio, places=9)
        self.assertEqual(report["result"]["decode"]["rows"], [])

    def test_markdown(self):
        p = run("bench", *SMALL, "-q", "--format", "md")
        self.assertExit(p, OK)
        lines = p.stdout.splitlines()
        header = next(l for l in lines if l.startswith("| N |"))
        cols = [c.strip() for c in header.strip("|").split("|")]
        self.assertEqual(cols[:6], ["N", "dense ms", "dense sd", "sparse ms", "sparse sd", "ref sparse ms"])
        for name in ("speedup", "edge ratio", "dense GFLOP/s", "dense %peak", "sparse GFLOP/s", "fast/ref"):
            self.assertIn(name, cols)
        start = lines.index(header)
        table = lines[start:start + 2 + 2]  # header, rule, two rows
        body = [l for l in table if l.startswith("| 64 |") or l.startswith("| 128 |")]
        self.assertEqual(len(body), 2)
        for l in body:
            self.assertEqual(len(l.strip("|").split("|")), len(cols))
        self.assertTrue(any(l.startswith("| T |") for l in lines))

    def test_csv(self):
        p = run("bench", *SMALL, "-q", "--format", "csv")
        self.assertExit(p, OK)
        rows = list(csv.reader(io.StringIO(p.stdout)))
        self.assertEqual(rows[0], CSV_COLUMNS)
        body = rows[1:]
        self.assertEqual(len(body), 2 * 3 + 1 * 2)
        for r in body:
            self.assertEqual(len(r), len(CSV_COLUMNS))
        kinds = {(r[0], r[1], r[2]) for r in body}
        self.assertIn(("prefill", "64", "sparse_ref"), kinds)
        self.assertIn(("decode", "128", "dense"), kinds)
        for r in body:
            self.assertEqual(r[9], "ms" if r[0] == "prefill" else "ns")
            self.assertGreater(float(r[5]), 0)

    def test_format_json_is_the_envelope(self):
        p = run("bench", *SMALL, "-q", "--format", "json")
        self.assertExit(p, OK)
        self.assertEnvelope(json.loads(p.stdout), "bench", 0)

    def test_text_and_progress_lines(self):
        p = run("bench", *SMALL)
        self.assertExit(p, OK)
        self.assertIn("prefill", p.stdout)
        self.assertIn("fma peak", p.stdout)
        # stderr is not a terminal here: one line per N and per decode T
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 3, p.stderr)
        self.assertTrue(lines[0].startswith("bench: N=64"))
        self.assertTrue(lines[1].startswith("bench: N=128"))
        self.assertTrue(lines[2].startswith("bench: T=128"))

    def test_progress_bar_on_a_terminal(self):
        code, out, err = run_on_terminal("bench", *SMALL)
        self.assertEqual(code, OK)
        self.assertIn("fma peak", out)
        err = err.replace("\r\n", "\n")  # the terminal's own newline translation
        draws = err.split("\r")[1:]  # each draw starts with a carriage return
        self.assertGreater(len(draws), 3, err)
        for draw in draws:
            self.assertRegex(draw, r"^\[[#.]{30}\] +\d+% .*\x1b\[K")
        self.assertTrue(draws[-1].startswith("[" + "#" * 30 + "] 100% "), draws[-1])
        self.assertTrue(err.endswith("\x1b[K\n"), err[-40:])  # the finished bar keeps its line
        self.assertNotIn("bench: N=", err)  # no per-N lines on a terminal
        code, _, err = run_on_terminal("bench", *SMALL, "-q")
        self.assertEqual((code, err), (OK, ""))

    def test_plot(self):
        svg = self.path("b.svg")
        p, report = bench_json("--plot", svg)
        self.assertExit(p, OK)
        self.assertEqual(report["result"]["plot"], svg)
        root = ET.parse(svg).getroot()
        self.assertTrue(root.tag.endswith("svg"))
        self.assertGreaterEqual(sum(1 for e in root.iter() if e.tag.endswith("path")), 4)
        self.assertEqual(self.no_temp_files(self.tmp), [])

    def test_plot_unwritable(self):
        p = run("bench", *SMALL, "-q", "--plot", os.path.join(self.tmp, "missing", "b.svg"))
        self.assertExit(p, IO)

    def test_llama_preset(self):
        p, report = run_json("bench", "--preset", "llama8x64", "--seq", "64", "--reps", "1", "--warmup", "0",
                             "--threads", "1", "--decode-at", "none", "--no-reference", "-q")
        self.assertExit(p, OK)
        r = report["result"]
        self.assertEqual(r["shape"], {"q_heads": 8, "kv_heads": 8, "head_dim": 64})
        self.assertEqual((r["config"]["window"], r["config"]["block_size"]), (128, 64))
        self.assertIsNone(r["prefill"][0]["sparse_ref"])
        self.assertFalse(r["fits"]["dense"]["valid"])  # one N: no fit

    def test_explicit_dim_overrides_preset(self):
        p, report = run_json("bench", "--seq", "64", "--dim", "64", "--reps", "1", "--warmup", "0", "--threads", "1",
                             "--decode-at", "none", "-q")
        self.assertExit(p, OK)
        self.assertEqual(report["result"]["shape"]["head_dim"], 64)

    def test_explicit_zero_is_the_users_value(self):
        # 0 given is not "the preset's": window 0 runs without the local window (as in forward),
        # 0 heads, dim or block are refused like forward's (they were once silently the preset's).
        p, report = run_json("bench", "--preset", "aether", "--seq", "64", "--window", "0", "--reps", "1",
                             "--warmup", "0", "--threads", "1", "--decode-at", "none", "-q")
        self.assertExit(p, OK)
        self.assertEqual((report["result"]["config"]["window"], report["result"]["config"]["block_size"]), (0, 16))
        for opt, words in (("--q-heads", ("--q-heads", "> 0")), ("--kv-heads", ("--kv-heads", "> 0")),
                           ("--dim", ("--dim", "> 0")), ("--block", ("--block", "> 0"))):
            with self.subTest(opt=opt):
                p = run("bench", *small(decode_at="none"), "-q", opt, "0")
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, *words)

    def test_pattern_options(self):
        # The pattern options forward takes: the config, the edges and the title follow them.
        pattern = ("--no-causal", "--landmarks", "mass", "--globals", "3", "--no-log-stride")
        p, report = bench_json(*pattern, seq="64,128", decode_at="none")
        self.assertExit(p, OK)
        r = report["result"]
        self.assertEqual(r["config"], dict(window=16, block_size=32, globals=[3], causal=False, log_stride=False,
                                           landmarks=True, landmark_mode="mass"))
        for row in r["prefill"]:
            n = row["seq"]
            self.assertEqual(row["edges"]["dense_per_head"], n * n)  # bidirectional
            q, fwd = run_json("forward", "--preset", "bench", "--seq", n, *pattern, "--threads", "1")
            self.assertExit(q, OK)
            self.assertEqual(fwd["result"]["edges"]["per_head"], row["edges"]["sparse_per_head"])
        p = run("bench", *small(seq="64", decode_at="none"), "-q", "--no-landmarks", "--globals", "none")
        self.assertExit(p, OK)
        self.assertIn("(q_heads 4, kv_heads 4, dim 32, window 16, block 32, globals [], causal, no landmarks)",
                      p.stdout.splitlines()[0])
        p = run("bench", *small(seq="64", decode_at="none"), "-q", "--landmarks", "mean")
        self.assertIn("window 16, block 32, causal), isa", p.stdout.splitlines()[0])  # defaults unnamed
        for bad in (("--landmarks", "median"), ("--globals", "1,x"), ("--globals", "")):
            p = run("bench", *small(seq="64", decode_at="none"), "-q", *bad)
            self.assertExit(p, USAGE)
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)

    def test_thread_scaling(self):
        p, report = bench_json(seq="64", threads="2", decode_at="none", no_dense_above="64",
                               scaling_at="128,64", scaling_rounds="2")
        self.assertExit(p, OK)
        sc = report["result"]["scaling"]
        self.assertEqual((sc["threads"], sc["rounds"], sc["reps_per_round"], sc["note"]), (2, 2, 2, None))
        self.assertEqual([r["seq"] for r in sc["rows"]], [64, 128])
        self.assertIsNone(sc["rows"][1]["dense"])  # above --no-dense-above
        for row in sc["rows"]:
            for kernel in ("dense", "sparse"):
                k = row[kernel]
                if k is None:
                    continue
                self.assertEqual(len(k["one_thread"]["samples_ms"]), 4)
                self.assertEqual(len(k["threads"]["samples_ms"]), 4)
                self.assertEqual(len(k["round_speedups"]), 2)
                self.assertAlmostEqual(k["speedup"], k["one_thread"]["median_ms"] / k["threads"]["median_ms"])
                # One thread pinned to each CPU this process may use, every round.
                by_cpu = k["one_thread_by_cpu"]
                self.assertEqual([c["cpu"] for c in by_cpu], CPUS)
                self.assertTrue(all(len(c["samples_ms"]) == 4 for c in by_cpu))
                medians = [c["median_ms"] for c in by_cpu]
                # With a CPU per thread, also one-thread calls on every CPU at once, every round.
                concurrent = k["one_thread_concurrent_by_cpu"]
                if len(CPUS) == 2:
                    self.assertAlmostEqual(k["balanced_bound"], min(medians) * sum(1 / m for m in medians))
                    self.assertEqual([c["cpu"] for c in concurrent], CPUS)
                    self.assertTrue(all(len(c["samples_ms"]) == 4 for c in concurrent))
                    self.assertAlmostEqual(k["concurrent_bound"],
                                           k["one_thread"]["median_ms"] * sum(1 / c["median_ms"] for c in concurrent))
                    self.assertEqual(len(k["round_concurrent_bounds"]), 2)
                    self.assertTrue(all(b > 0 for b in k["round_concurrent_bounds"]))
                else:  # the bounds need a CPU per thread
                    self.assertIsNone(k["balanced_bound"])
                    self.assertEqual(concurrent, [])
                    self.assertIsNone(k["concurrent_bound"])
                    self.assertEqual(k["round_concurrent_bounds"], [])
        self.assertEqual(report["result"]["params"]["scaling_at"], [64, 128])
        md = run("bench", *small(seq="64", threads="2", decode_at="none", scaling_at="64", scaling_rounds="1"), "-q",
                 "--format", "md")
        self.assertExit(md, OK)
        self.assertIn("| N | dense 1 thread ms | dense 2 threads ms | dense speedup |", md.stdout)
        self.assertIn("| sparse 1 thread by CPU ms | sparse balanced bound | sparse concurrent bound |", md.stdout)
        self.assertIn(f"cpu{CPUS[0]} ", md.stdout)
        rows = list(csv.reader(io.StringIO(run("bench", *small(seq="64", threads="2", decode_at="none",
                                                                  scaling_at="64", scaling_rounds="1"), "-q",
                                                 "--format", "csv").stdout)))
        self.assertEqual({r[2] for r in rows if r[0] == "scaling"},
                         {"dense@1", "dense@2", "sparse@1", "sparse@2"} |
                         {f"{kernel}@cpu{c}" for kernel in ("dense", "sparse") for c in CPUS} |
                         {f"{kernel}@cpu{c}/concurrent" for kernel in ("dense", "sparse") for c in CPUS
                          if len(CPUS) == 2})
        self.assertTrue(all(len(r) == len(CSV_COLUMNS) for r in rows))
        by_kernel = {r["kernel"]: r for r in (dict(zip(CSV_COLUMNS, r)) for r in rows[1:]) if r["table"] == "scaling"}
        for kernel in ("dense", "sparse"):
            one, two = by_kernel[kernel + "@1"], by_kernel[kernel + "@2"]
            self.assertEqual([one[c] for c in CSV_COLUMNS[-3:]], ["", "", ""])
            speedup = float(two["threads_speedup"])
            self.assertAlmostEqual(speedup, float(one["median"]) / float(two["median"]), places=5)
            # One round: its own ratio is the speedup.
            self.assertAlmostEqual(float(two["threads_speedup_rounds_min"]), speedup, places=5)
            self.assertAlmostEqual(float(two["threads_speedup_rounds_max"]), speedup, places=5)
        p, report = bench_json(seq="64", threads="1", decode_at="none", scaling_at="64")
        self.assertExit(p, OK)
        self.assertEqual(report["result"]["scaling"]["rows"], [])
        self.assertIn("--threads 2", report["result"]["scaling"]["note"])

    def test_thread_scaling_on_one_allowed_cpu(self):
        # Limited to one CPU (as with taskset): the per-CPU calls run on that one, and there is
        # neither bound for two threads on one CPU, nor calls on every CPU at once.
        cpu = CPUS[0]
        p = subprocess.run([BIN, "bench", *small(seq="64", threads="2", decode_at="none", scaling_at="64",
                                                 scaling_rounds="1"), "-q", "--json"],
                           capture_output=True, text=True, timeout=300,
                           preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
        self.assertExit(p, OK)
        for kernel in ("dense", "sparse"):
            k = json.loads(p.stdout)["result"]["scaling"]["rows"][0][kernel]
            self.assertEqual([c["cpu"] for c in k["one_thread_by_cpu"]], [cpu])
            self.assertIsNone(k["balanced_bound"])
            self.assertEqual(k["one_thread_concurrent_by_cpu"], [])
            self.assertIsNone(k["concurrent_bound"])

    def test_decode_rounds(self):
        # --rounds also takes the decoders through that many rounds, each from a fresh cache:
        # the samples are pooled, and each round's median is kept.
        p, report = bench_json(seq="64", decode_at="128", rounds="3")
        self.assertExit(p, OK)
        row = report["result"]["decode"]["rows"][0]
        for kernel, steps in (("sparse", 16), ("dense", 8)):
            k = row[kernel]
            self.assertEqual(k["steps"], 3 * steps)
            self.assertEqual(len(k["samples_ns"]), 3 * steps)
            self.assertEqual(k["prefill"], 128 - steps)
            self.assertEqual(len(k["round_medians_ns"]), 3)
            self.assertLessEqual(min(k["round_medians_ns"]), k["median_ns"])
            self.assertGreaterEqual(max(k["round_medians_ns"]), k["median_ns"])
        text = run("bench", *small(seq="64", decode_at="128", rounds="2"), "-q")
        self.assertExit(text, OK)
        self.assertIn("sparse rounds ns", text.stdout)
        out = run("bench", *small(seq="64", decode_at="128", rounds="2"), "-q", "--format", "csv")
        self.assertExit(out, OK)
        rows = [dict(zip(CSV_COLUMNS, r)) for r in list(csv.reader(io.StringIO(out.stdout)))[1:]]
        decode = [r for r in rows if r["table"] == "decode"]
        self.assertEqual([(r["kernel"], r["rounds"], r["samples"]) for r in decode],
                         [("sparse", "2", "32"), ("dense", "2", "16")])

    def test_rounds(self):
        p, report = bench_json(seq="64", decode_at="none", rounds="3")
        self.assertExit(p, OK)
        r = report["result"]
        self.assertEqual(r["params"]["rounds"], 3)
        row = r["prefill"][0]
        for kernel in ("dense", "sparse", "sparse_ref"):
            self.assertEqual(len(row[kernel]["samples_ms"]), 6)  # 3 rounds x --reps 2, pooled
        self.assertEqual(len(row["round_speedups"]), 3)
        self.assertEqual(len(row["round_fast_vs_ref"]), 3)
        p, one = bench_json(seq="64", decode_at="none")  # the default: one round
        self.assertEqual((one["result"]["params"]["rounds"], len(one["result"]["prefill"][0]["round_speedups"])), (1, 1))
        md = run("bench", *small(seq="64", decode_at="none", rounds="2"), "-q", "--format", "md")
        self.assertExit(md, OK)
        self.assertIn("| speedup rounds | fast/ref rounds |", md.stdout)
        out = run("bench", *small(seq="64", decode_at="none", rounds="2"), "-q", "--format", "csv")
        self.assertExit(out, OK)
        rows = [dict(zip(CSV_COLUMNS, r)) for r in list(csv.reader(io.StringIO(out.stdout)))[1:]]
        self.assertEqual([r["rounds"] for r in rows], ["2", "2", "2"])
        sparse = next(r for r in rows if r["kernel"] == "sparse")
        for name in ("speedup_rounds", "fast_vs_ref_rounds"):
            self.assertLessEqual(float(sparse[name + "_min"]), float(sparse[name + "_max"]))

    def test_isa_after_the_command_is_what_ran_and_what_the_host_block_says(self):
        # `bench --isa X` is the global --isa: before, bench had its own, and host.isa named
        # the best ISA while the kernels ran X.
        p = run("bench", *small(decode_at="64"), "-q", "--json", "--isa", "scalar")
        self.assertExit(p, OK)
        r = json.loads(p.stdout)
        self.assertEqual(r["host"]["isa"], "scalar")
        self.assertEqual(r["result"]["machine"]["isa"], "scalar")
        self.assertEqual(r["result"]["decode"]["sparse_kernel"], "scalar")

    def test_usage_errors(self):
        for overrides, extra in (({"seq": "abc"}, ()), ({"seq": ""}, ()), ({"seq": "0"}, ()), ({"reps": "0"}, ()),
                                 ({"decode_at": "1,x"}, ()), ({"decode_steps": "0"}, ()),
                                 ({"dense_decode_steps": "0"}, ()), ({}, ("--isa", "sse9")),
                                 ({}, ("--format", "xml")), ({}, ("--preset", "nope")), ({}, ("--tolerance", "-1")),
                                 ({}, ("--q-heads", "3", "--kv-heads", "2")), ({}, ("--bogus",)),
                                 ({"reps": "-1"}, ()), ({"threads": "-2"}, ()),
                                 ({"warmup": "99999999999999999999"}, ()), ({"scaling_at": "0"}, ()),
                                 ({"scaling_at": "64,x"}, ()), ({"scaling_rounds": "0"}, ()), ({"rounds": "0"}, ())):
            p = run("bench", *small(**overrides), "-q", *extra)
            self.assertExit(p, USAGE)
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)


class BenchCompare(CliTestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc, cls.report = bench_json()

    def write(self, name, obj):
        path = self.path(name)
        with open(path, "w") as f:
            json.dump(obj, f)
        return path

    def scaled(self, factor):
        """The saved report with every median (and sample) multiplied by factor."""
        base = copy.deepcopy(self.report)
        for row in base["result"]["prefill"]:
            for kernel in ("dense", "sparse", "sparse_ref"):
                row[kernel]["median_ms"] *= factor
        for row in base["result"]["decode"]["rows"]:
            for kernel in ("sparse", "dense"):
                row[kernel]["median_ns"] *= factor
        return base

    def test_tiny_baseline_fails(self):
        path = self.write("tiny.json", self.scaled(1e-6))
        p = run("bench", *SMALL, "-q", "--compare", path)
        self.assertExit(p, CHECK_FAILED)
        self.assertOneLineError(p, "check failed", "baseline", "tolerance", "more regressions")
        # names the worst median: N (prefill) or T (decode) and the kernel
        self.assertRegex(p.stderr, r"(N|decode T)=\d+ (dense|sparse|sparse_ref) median")

    def test_extreme_ratio_and_small_tolerance_print_in_full(self):
        # A 63-digit "%.2f" of 5e298 looked cut short, and a tolerance of 0.004 printed as 0.00.
        path = self.write("tinier.json", self.scaled(1e-300))
        p = run("bench", *SMALL, "-q", "--compare", path, "--tolerance", "0.004")
        self.assertExit(p, CHECK_FAILED)
        self.assertRegex(p.stderr, r" is \d\.\d+e\+\d+x the baseline \S+ (ms|ns) \(tolerance 0\.004\)")
        self.assertIn("(tolerance 0.004):", p.stdout)
        self.assertRegex(p.stdout, r": \d\.\d+e\+\d+x baseline  REGRESSED")

    def test_tiny_baseline_json_report(self):
        path = self.write("tiny.json", self.scaled(1e-6))
        p, report = run_json("bench", *SMALL, "-q", "--compare", path)
        self.assertExit(p, CHECK_FAILED)
        self.assertEnvelope(report, "bench", 1)
        c = report["result"]["compare"]
        self.assertFalse(c["ok"])
        self.assertEqual(c["compared"], 2 * 3 + 2)
        self.assertEqual(c["regressions"], c["compared"])
        for e in c["entries"]:
            self.assertTrue(e["regressed"])
            self.assertAlmostEqual(e["ratio"], e["current"] / e["baseline"])

    def test_huge_baseline_passes(self):
        path = self.write("huge.json", self.scaled(1e6))
        p, report = run_json("bench", *SMALL, "-q", "--compare", path, "--tolerance", "0.15")
        self.assertExit(p, OK)
        c = report["result"]["compare"]
        self.assertTrue(c["ok"])
        self.assertEqual(c["regressions"], 0)
        self.assertEqual(c["tolerance"], 0.15)

    def test_hand_made_minimal_baseline(self):
        # Only what --compare reads: schema, workload, one prefill row with one median.
        r = self.report["result"]
        base = {"schema": "rvtemporal.bench/1", "preset": "bench", "shape": r["shape"], "config": r["config"],
                "prefill": [{"seq": 128, "sparse": {"median_ms": 1e-9}}]}
        p = run("bench", *SMALL, "-q", "--compare", self.write("min.json", base))
        self.assertExit(p, CHECK_FAILED)
        self.assertOneLineError(p, "N=128 sparse")
        base["prefill"][0]["sparse"]["median_ms"] = 1e9
        p, report = run_json("bench", *SMALL, "-q", "--compare", self.write("min.json", base))
        self.assertExit(p, OK)
        self.assertEqual(report["result"]["compare"]["compared"], 1)
        self.assertIn("prefill N=64 sparse", report["result"]["compare"]["unmatched"])

    def test_same_machine_is_recorded_and_quiet(self):
        path = self.write("huge.json", self.scaled(1e6))
        p, report = run_json("bench", *SMALL, "--compare", path)  # not -q: a warning would show
        self.assertExit(p, OK)
        c = report["result"]["compare"]
        self.assertTrue(c["same_machine"])
        self.assertEqual(c["machine"], c["baseline_machine"])
        self.assertIn("thread", c["machine"])
        self.assertGreater(c["fma_peak_ratio"], 0)
        self.assertNotIn("warning", p.stderr)

    def test_another_cpu_is_a_warning_not_a_failure(self):
        base = self.scaled(1e6)
        m = base["result"]["machine"]
        m["cpu_id"]["family"] = (m["cpu_id"]["family"] or 0) + 1
        base["result"]["fma_peak"]["single_core_gflops"] = (base["result"]["fma_peak"]["single_core_gflops"] or 1.0) * 2
        path = self.write("other_cpu.json", base)
        p, report = run_json("bench", *SMALL, "--compare", path)
        self.assertExit(p, OK)  # the medians decide the exit code
        warning = p.stderr.splitlines()[0]
        self.assertTrue(warning.startswith("warning: bench: --compare: baseline " + path + " ran on "), warning)
        self.assertIn("family %d" % m["cpu_id"]["family"], warning)
        self.assertIn("family %d" % (m["cpu_id"]["family"] - 1), warning)
        c = report["result"]["compare"]
        self.assertFalse(c["same_machine"])
        peak = report["result"]["fma_peak"]["single_core_gflops"]
        if peak is not None:  # this run's peak over the doubled one of the baseline
            self.assertAlmostEqual(c["fma_peak_ratio"], peak / base["result"]["fma_peak"]["single_core_gflops"])
        # -q hides the warning, the report still says so; text output names both machines
        p = run("bench", *SMALL, "-q", "--compare", path)
        self.assertExit(p, OK)
        self.assertEqual(p.stderr, "")
        self.assertIn("baseline ran on ", p.stdout)
        self.assertIn("NOT THE SAME MACHINE OR SETTINGS", p.stdout)

    def test_other_thread_count_is_a_warning(self):
        base = self.scaled(1e6)
        base["result"]["machine"]["threads"] = 7
        p = run("bench", *SMALL, "--compare", self.write("threads.json", base))
        self.assertExit(p, OK)
        self.assertIn("7 threads", p.stderr.splitlines()[0])

    def test_old_baseline_without_cpu_id_cannot_tell(self):
        for absent in (True, False):  # no cpu_id key (older reports), or null (no cpuinfo fields)
            with self.subTest(absent=absent):
                base = self.scaled(1e6)
                if absent:
                    del base["result"]["machine"]["cpu_id"]
                else:
                    base["result"]["machine"]["cpu_id"] = None
                p, report = run_json("bench", *SMALL, "--compare", self.write("old.json", base))
                self.assertExit(p, OK)
                self.assertIsNone(report["result"]["compare"]["same_machine"])
                self.assertNotIn("warning", p.stderr)

    def test_globals_written_twice_are_the_same_workload(self):
        # The saved report ran globals [0]; "0,0" is the same pattern, so it compares.
        p = run("bench", *SMALL, "-q", "--globals", "0,0", "--compare", self.write("same.json", self.scaled(1e6)))
        self.assertExit(p, OK)

    def test_other_workload_is_bad_input(self):
        # Preset, shape, pattern or the decode table's cache storage other than the baseline's.
        for args, words in ((("--preset", "aether"), ("aether", "bench")), (("--dim", "16"), ("dim 16", "dim 32")),
                            (("--landmarks", "mass"), ("landmarks mass", "landmarks mean")),
                            (("--kv-dtype", "f16"), ("over an f32 cache", "over an f16 one"))):
            with self.subTest(args=args):
                p = run("bench", *SMALL, "-q", *args, "--compare", self.write("b.json", self.report))
                self.assertExit(p, BAD_INPUT)
                self.assertOneLineError(p, "not comparable", *words)

    def test_no_common_size_fails_before_timing(self):
        # Checked up front: nothing is timed (no progress line) when no N or T can be compared.
        p = run("bench", *small(seq="96", decode_at="96"), "--compare", self.write("b.json", self.report))
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p, "b.json", "none of this run's sizes")
        self.assertEqual(p.stdout, "")

    def test_missing_baseline_is_io(self):
        p = run("bench", *SMALL, "-q", "--compare", self.path("nope.json"))
        self.assertExit(p, IO)
        self.assertOneLineError(p, "nope.json")

    def test_not_a_bench_report(self):
        path = self.path("bad.json")
        with open(path, "w") as f:
            f.write("{ not json")
        p = run("bench", *SMALL, "-q", "--compare", path)
        self.assertExit(p, BAD_INPUT)
        p = run("bench", *SMALL, "-q", "--compare", self.write("fwd.json", {"command": "forward", "result": {}}))
        self.assertExit(p, BAD_INPUT)


if __name__ == "__main__":
    main()
