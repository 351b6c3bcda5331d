"""CLI tests of `rvtemporal parity`: exact exit codes, the JSON report, markdown, gates and pictures."""
import json
import os
import re
import struct
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rvt_cli import *  # noqa: E402,F401,F403

SUITES = ["saturated", "realistic", "stream", "gqa", "reference", "model", "landmarks", "sweep"]
SVG_NS = "{http://www.w3.org/2000/svg}"


def cases(report, suite):
    for s in report["result"]["suites"]:
        if s["name"] == suite:
            return {c["name"]: c for c in s["cases"]}
    raise AssertionError(f"suite {suite} not in report")


def write_npy(path, shape, values):
    """A '<f4' C-order .npy (format 1.0) without numpy."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else ""))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%df" % len(values), *values))


class TestParityPasses(CliTestCase):
    def test_all_suites_pass(self):
        p, r = run_json("parity", "--suite", "all")
        self.assertExit(p, OK)
        self.assertEnvelope(r, "parity", 0)
        res = r["result"]
        self.assertEqual(res["schema"], "rvtemporal.parity/1")
        self.assertTrue(res["pass"])
        self.assertEqual(res["suites_run"], SUITES)
        self.assertEqual(res["failures"], [])
        self.assertEqual(res["failed_cases"], 0)
        self.assertEqual(res["gate_preset"], "default")
        self.assertEqual(p.stderr, "")
        for s in res["suites"]:
            self.assertTrue(s["pass"], s["name"])
            self.assertTrue(s["cases"], s["name"])
            for c in s["cases"]:
                for key in ("name", "pass", "gating", "config", "metrics", "gates", "worst", "details"):
                    self.assertIn(key, c)
                if c["gating"]:
                    self.assertTrue(c["pass"], f"{s['name']}/{c['name']}")
                    self.assertTrue(c["gates"], f"{s['name']}/{c['name']} has no gate")
                # every case carries the always-on non-finite gate
                self.assertIn("nonfinite", [g["metric"] for g in c["gates"]])
        # the reference numbers
        sat = cases(r, "saturated")
        self.assertLess(sat["window_covers_all_causal"]["metrics"]["max_abs"], 1e-6)
        self.assertLess(sat["reference_saturated"]["metrics"]["max_abs"], 1e-4)
        gqa = cases(r, "gqa")
        for shape in ("28x4", "32x4"):
            m = gqa[f"mapping_{shape}_sparse"]
            self.assertEqual(m["metrics"]["mapping_errors"], 0)
            self.assertEqual(len(m["details"]["heads"]), int(shape.split("x")[0]))
            self.assertLessEqual(gqa[f"first_token_{shape}"]["metrics"]["max_abs"], 1e-6)
            self.assertLessEqual(gqa[f"second_token_{shape}"]["metrics"]["max_abs"], 1e-5)
        model = cases(r, "model")["logits_dense_vs_sparse"]
        gates = {g["metric"]: g for g in model["gates"]}
        self.assertEqual((gates["top1"]["op"], gates["top1"]["bound"]), (">=", 0.99))
        self.assertEqual((gates["spearman"]["op"], gates["spearman"]["bound"]), (">=", 0.95))
        sweep = cases(r, "sweep")
        self.assertTrue(sweep["best"]["gating"])
        rows = [c for c in sweep.values() if not c["gating"]]
        self.assertEqual(len(rows), 12)  # window=8,16,32,64 x block=8,16,32
        best = [c for c in rows if c["details"]["best"]]
        self.assertEqual(len(best), 1)
        passing = [c for c in rows if c["pass"]]
        self.assertEqual(best[0]["metrics"]["sparsity"], max(c["metrics"]["sparsity"] for c in passing))
        self.assertEqual(sweep["best"]["config"]["chosen"], best[0]["name"])

    def test_strict_preset_passes_and_is_tighter(self):
        p, strict = run_json("parity", "--suite", "stream,reference", "--gate-preset", "strict")
        self.assertExit(p, OK)
        p, default = run_json("parity", "--suite", "stream,reference")
        self.assertExit(p, OK)
        self.assertEqual(strict["result"]["gate_preset"], "strict")
        b = {g["metric"]: g["bound"] for g in cases(strict, "stream")["sparse_f16"]["gates"]}
        a = {g["metric"]: g["bound"] for g in cases(default, "stream")["sparse_f16"]["gates"]}
        self.assertLess(b["max_abs"], a["max_abs"])
        self.assertLess(b["rel_l1"], a["rel_l1"])

    def test_md_format_prints_a_table(self):
        p = run("parity", "--suite", "saturated,landmarks,sweep", "--format", "md")
        self.assertExit(p, OK)
        out = p.stdout
        self.assertTrue(out.startswith("## rvtemporal parity: PASS"), out[:200])
        self.assertIn("| suite | case | result | max_abs | rel_l1 | cosine | other | gates |", out)
        self.assertIn("|---|---|---|---|---|---|---|---|", out)
        self.assertRegex(out, r"\| saturated \| window_covers_all_causal \| pass \| ")
        self.assertIn("### landmarks: compat `mean` vs `mass` against dense", out)
        self.assertIn("### sweep: accuracy vs sparsity", out)
        self.assertEqual(len(re.findall(r"\*\*best\*\*", out)), 1)
        # markdown is the default text output too; --format json is the same as --json
        self.assertEqual(run("parity", "--suite", "saturated").stdout.splitlines()[0], "## rvtemporal parity: PASS")
        p = run("parity", "--suite", "saturated", "--format", "json")
        self.assertExit(p, OK)
        self.assertEqual(json.loads(p.stdout)["command"], "parity")

    def test_out_report(self):
        path = self.path("r.json")
        p = run("parity", "--suite", "saturated", "--out-report", path)
        self.assertExit(p, OK)
        with open(path) as f:
            self.assertTrue(json.load(f)["result"]["pass"])


class TestParityGates(CliTestCase):
    def test_tightened_gate_fails_with_worst_element(self):
        p, r = run_json("parity", "--suite", "realistic", "--gate", "max_abs=1e-12")
        self.assertExit(p, CHECK_FAILED)
        self.assertEnvelope(r, "parity", CHECK_FAILED)
        self.assertOneLineError(p, "realistic/sparse_vs_dense", "max_abs", "> 1e-12", "worst element pos ")
        res = r["result"]
        self.assertFalse(res["pass"])
        self.assertEqual(len(res["failures"]), 1)
        f = res["failures"][0]
        self.assertEqual((f["suite"], f["case"], f["metric"], f["op"], f["bound"], f["source"]),
                         ("realistic", "sparse_vs_dense", "max_abs", "<=", 1e-12, "user"))
        w = f["worst"]
        self.assertEqual(w["abs_err"], f["value"])
        self.assertAlmostEqual(abs(w["got"] - w["want"]), w["abs_err"], places=5)
        # stderr names the same element as the JSON
        self.assertIn(f"worst element pos {w['pos']} head {w['head']} dim {w['dim']}: ", p.stderr)
        case = cases(r, "realistic")["sparse_vs_dense"]
        self.assertEqual(case["worst"], w)
        self.assertFalse(case["pass"])
        # text mode: the same one-line error, and the md table on stdout marks the failure
        p = run("parity", "--suite", "realistic", "--gate", "max_abs=1e-12")
        self.assertExit(p, CHECK_FAILED)
        self.assertOneLineError(p, "realistic/sparse_vs_dense", "max_abs")
        self.assertIn("**FAIL**", p.stdout)
        self.assertIn("Worst element of realistic/sparse_vs_dense: pos ", p.stdout)

    def test_lower_bound_gate(self):
        p, r = run_json("parity", "--suite", "model", "--gate", "spearman=1.01")
        self.assertExit(p, CHECK_FAILED)
        self.assertOneLineError(p, "model/logits_dense_vs_sparse", "spearman", "< 1.01")
        self.assertEqual(r["result"]["failures"][0]["op"], ">=")

    def test_identical_outputs_score_a_cosine_of_exactly_one(self):
        # GQA's mapping and repeat cases compare bit-identical outputs: cosine=1 passes them; a case
        # an ulp away fails with digits enough to tell the value from the bound.
        p, r = run_json("parity", "--suite", "gqa", "--gate", "cosine=1")
        self.assertExit(p, CHECK_FAILED)
        identical = {name: c for name, c in cases(r, "gqa").items() if c["metrics"]["max_abs"] == 0}
        self.assertGreaterEqual(len(identical), 8)
        for name, c in identical.items():
            self.assertEqual(c["metrics"]["cosine"], 1.0, name)
            self.assertTrue(c["pass"], name)
        self.assertRegex(p.stderr, r"cosine 0\.99999999\d+ < 1;")

    def test_gates_can_loosen_and_drop(self):
        # loosening: the sweep's rows all pass; dropping: no max_abs gate left in stream
        p, r = run_json("parity", "--suite", "sweep,stream", "--gate", "sweep.cosine=0,sweep.rel_l1=off",
                        "--gate", "stream.max_abs=off")
        self.assertExit(p, OK)
        self.assertTrue(all(c["pass"] for c in cases(r, "sweep").values()))
        for c in cases(r, "stream").values():
            self.assertNotIn("max_abs", [g["metric"] for g in c["gates"]])
        for c in cases(r, "sweep").values():
            self.assertNotIn("rel_l1", [g["metric"] for g in c["gates"]])

    def test_bad_gate_syntax_is_usage(self):
        for gate in ("max_abs", "max_abs=", "=1e-4", "max_abs=abc", "max_abs=1e-4,", "bogus=1",
                     "nosuite.max_abs=1", "max_abs=inf", "max_abs=1e-4;cosine=0.9",
                     "nonfinite=off", "nonfinite=1", "saturated.nonfinite=100000"):  # always on
            with self.subTest(gate=gate):
                p = run("parity", "--suite", "saturated", "--gate", gate)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, "--gate")
                self.assertEqual(p.stdout, "")

    def test_nonfinite_gate_at_zero_is_accepted(self):
        p = run("parity", "--suite", "saturated", "--gate", "nonfinite=0")
        self.assertExit(p, OK)

    def test_gate_that_checks_nothing_is_usage(self):
        p = run("parity", "--suite", "realistic", "--gate", "top1=0.9")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "top1", "no selected suite")
        p = run("parity", "--suite", "realistic", "--gate", "stream.max_abs=1")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "not selected")

    def test_other_usage_errors(self):
        for args in (["--suite", "bogus"], ["--suite", "realistic,bogus"], ["--suite", ""],
                     ["--gate-preset", "loose"], ["--format", "csv"],
                     ["--suite", "realistic", "--sweep", "window=8"],
                     ["--suite", "sweep", "--sweep", "speed=1"], ["--suite", "sweep", "--sweep", "block=0"],
                     ["--suite", "realistic", "--blob", "x.rvne"],
                     ["--suite", "gqa", "--plot-dir", self.tmp],
                     ["--suite", "realistic", "--q-heads", "3", "--kv-heads", "2"],
                     ["--suite", "realistic", "--q", "q.npy"],
                     ["--suite", "realistic", "--format", "md", "--json"],
                     # sizes given are checked for suites with sizes of their own too
                     ["--suite", "model", "--seq", "0"], ["--suite", "gqa", "--q-heads", "4", "--kv-heads", "8"],
                     ["--suite", "gqa", "--dim", "0"]):
            with self.subTest(args=args):
                p = run("parity", *args)
                self.assertExit(p, USAGE)
                self.assertEqual(len([l for l in p.stderr.splitlines() if l.strip()]), 1, p.stderr)


class TestParityProgress(CliTestCase):
    def test_verbose_lines_per_suite(self):
        p = run("parity", "--suite", "realistic,stream", "-v")
        self.assertExit(p, OK)
        lines = [l for l in p.stderr.splitlines() if "parity: suite" in l]
        self.assertEqual(len(lines), 2, p.stderr)
        self.assertRegex(lines[0], r"^info: parity: suite realistic \(1/2\): pass, 1 case, \d+\.\d\d s$")
        self.assertRegex(lines[1], r"^info: parity: suite stream \(2/2\): pass, \d+ cases, \d+\.\d\d s$")
        p = run("parity", "--suite", "realistic", "--gate", "max_abs=1e-12", "-v")
        self.assertExit(p, CHECK_FAILED)
        self.assertIn("info: parity: suite realistic (1/1): FAIL, 1 case, ", p.stderr)

    def test_status_line_on_a_terminal(self):
        code, out, err = run_on_terminal("parity", "--suite", "realistic,stream")
        self.assertEqual(code, OK)
        self.assertIn("## rvtemporal parity: PASS", out)
        self.assertEqual(err, "\rparity: suite 1/2: realistic\x1b[K\r\x1b[K"
                              "\rparity: suite 2/2: stream\x1b[K\r\x1b[K")
        # cleared before the one-line error, which stands alone on its line
        code, _, err = run_on_terminal("parity", "--suite", "realistic", "--gate", "max_abs=1e-12")
        self.assertEqual(code, CHECK_FAILED)
        self.assertTrue(err.startswith("\rparity: suite 1/1: realistic\x1b[K\r\x1b[Krvtemporal: error: parity: "), err)
        self.assertEqual(err.count("\n"), 1)
        code, _, err = run_on_terminal("parity", "--suite", "realistic,stream", "-q")
        self.assertEqual((code, err), (OK, ""))


class TestParityInputs(CliTestCase):
    def test_npy_inputs(self):
        n, h, d = 48, 2, 8
        vals = [((i * 37) % 101) / 50.0 - 1.0 for i in range(n * h * d)]
        for name in ("q", "k", "v"):
            write_npy(self.path(f"{name}.npy"), (n, h, d), vals[::-1] if name == "v" else vals)
        p, r = run_json("parity", "--suite", "realistic,reference,saturated", "--q", self.path("q.npy"),
                        "--k", self.path("k.npy"), "--v", self.path("v.npy"), "--window", "4", "--block", "8")
        self.assertExit(p, OK)
        c = cases(r, "realistic")["sparse_vs_dense"]
        self.assertEqual(c["config"]["inputs"]["source"], "files")
        self.assertEqual(c["config"]["shape"]["seq"], n)
        self.assertEqual(c["config"]["sparse"]["window"], 4)
        # Generator options beside the files are named, as forward names them.
        p = run("parity", "--suite", "realistic", "--q", self.path("q.npy"), "--k", self.path("k.npy"),
                "--v", self.path("v.npy"), "--seq", "64", "--dim", "16")
        self.assertExit(p, OK)
        self.assertIn("warning: parity: --seq, --dim have no effect with --q/--k/--v", p.stderr)

    def test_input_errors(self):
        p = run("parity", "--suite", "realistic", "--q", self.path("no.npy"), "--k", self.path("no.npy"),
                "--v", self.path("no.npy"))
        self.assertExit(p, IO)
        self.assertOneLineError(p, "no.npy")
        bad = self.path("bad.npy")
        with open(bad, "wb") as f:
            f.write(b"not a numpy file")
        p = run("parity", "--suite", "realistic", "--q", bad, "--k", bad, "--v", bad)
        self.assertExit(p, BAD_INPUT)
        p = run("parity", "--suite", "model", "--blob", self.path("none.rvne"))
        self.assertExit(p, IO)
        with open(self.path("junk.rvne"), "wb") as f:
            f.write(b"RVNE" + b"\0" * 40)
        p = run("parity", "--suite", "model", "--blob", self.path("junk.rvne"))
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p, "junk.rvne")
        # No positions: the option's fault when generated (usage), the files' when read (bad input).
        p = run("parity", "--suite", "realistic", "--seq", "0")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--seq", "> 0")
        for name in ("q", "k", "v"):
            write_npy(self.path(f"e{name}.npy"), (0, 2, 4), [])
        p = run("parity", "--suite", "realistic", "--q", self.path("eq.npy"), "--k", self.path("ek.npy"),
                "--v", self.path("ev.npy"))
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p, "no positions")

    def test_non_finite_inputs(self):
        # Refused where the files are read (exit 3, the first bad element named); with
        # --allow-nonfinite they reach the suites and the always-on nonfinite gate fails (exit 1).
        n, h, d = 32, 2, 8
        vals = [((i * 37) % 101) / 50.0 - 1.0 for i in range(n * h * d)]
        bad_vals = list(vals)
        bad_vals[(9 * h + 1) * d + 4] = float("inf")   # [9, 1, 4]
        bad_vals[(20 * h + 0) * d + 0] = float("nan")  # later
        for name in ("q", "k"):
            write_npy(self.path(f"{name}.npy"), (n, h, d), vals)
        write_npy(self.path("v.npy"), (n, h, d), bad_vals)
        args = ("parity", "--suite", "realistic", "--q", self.path("q.npy"), "--k", self.path("k.npy"),
                "--v", self.path("v.npy"), "--window", "4", "--block", "8")
        p = run(*args)
        self.assertExit(p, BAD_INPUT)
        self.assertEqual(p.stderr.strip(),
                         f"rvtemporal: error: {self.path('v.npy')}: non-finite value inf at [9, 1, 4] "
                         f"(element {(9 * h + 1) * d + 4} of {n * h * d}); pass --allow-nonfinite to propagate it")
        p, r = run_json(*args, "--allow-nonfinite")
        self.assertExit(p, CHECK_FAILED)
        c = cases(r, "realistic")["sparse_vs_dense"]
        failed = [g["metric"] for g in c["gates"] if not g["pass"]]
        self.assertIn("nonfinite", failed)

    def test_model_with_blob_file(self):
        blob = os.path.join(DATA, "blobs", "default.rvne")
        p, r = run_json("parity", "--suite", "model", "--blob", blob)
        self.assertExit(p, OK)
        c = cases(r, "model")["logits_dense_vs_sparse"]
        self.assertEqual(c["config"]["blob"], blob)
        # the default blob file is the default random blob: the same numbers
        p, d = run_json("parity", "--suite", "model")
        self.assertEqual(c["metrics"], cases(d, "model")["logits_dense_vs_sparse"]["metrics"])

    def test_custom_sweep(self):
        p, r = run_json("parity", "--suite", "sweep", "--seq", "128", "--sweep", "window=4,16",
                        "landmarks=mean,mass,off", "--gate", "sweep.cosine=0,sweep.rel_l1=off")
        self.assertExit(p, OK)
        s = [x for x in r["result"]["suites"] if x["name"] == "sweep"][0]
        self.assertEqual([row["setting"] for row in s["table"]],
                         ["window4_landmarksmean", "window4_landmarksmass", "window4_landmarksoff",
                          "window16_landmarksmean", "window16_landmarksmass", "window16_landmarksoff"])
        best = [row for row in s["table"] if row["best"]]
        self.assertEqual(len(best), 1)
        self.assertEqual(best[0]["sparsity"], max(row["sparsity"] for row in s["table"]))


class TestParityPlots(CliTestCase):
    def parse_svg(self, path):
        root = ET.parse(path).getroot()  # raises on malformed XML
        self.assertEqual(root.tag, SVG_NS + "svg")
        texts = " ".join(t.text or "" for t in root.iter(SVG_NS + "text"))
        return root, texts

    def test_plot_dir_writes_valid_svgs(self):
        out = self.path("plots")  # created: its parent exists
        p, r = run_json("parity", "--suite", "realistic,sweep", "--plot-dir", out)
        self.assertExit(p, OK)
        names = sorted(os.listdir(out))
        self.assertEqual(names, ["attention_maps.svg", "error_heatmap.svg", "pattern.svg", "sweep.svg"])
        self.assertEqual(sorted(r["result"]["plots"]), [os.path.join(out, n) for n in names])
        _, t = self.parse_svg(os.path.join(out, "pattern.svg"))
        for label in ("local window", "global token", "log-stride token", "landmark block",
                      "key position j", "query position i", "W=32, B=16"):
            self.assertIn(label, t)
        _, t = self.parse_svg(os.path.join(out, "attention_maps.svg"))
        for label in ("dense (exact softmax)", "sparse (effective weights)", "weight", "1e-4"):
            self.assertIn(label, t)
        _, t = self.parse_svg(os.path.join(out, "error_heatmap.svg"))
        for label in ("query position", "head", "|err|"):
            self.assertIn(label, t)
        _, t = self.parse_svg(os.path.join(out, "sweep.svg"))
        self.assertIn("window64_block32", t)
        self.assertEqual(self.no_temp_files(out), [])
        # an existing directory is reused
        p = run("parity", "--suite", "realistic", "--plot-dir", out, "--seq", "64")
        self.assertExit(p, OK)

    def test_plot_dir_in_missing_parent_is_io(self):
        out = os.path.join(self.tmp, "no", "such", "plots")
        p = run("parity", "--suite", "realistic", "--plot-dir", out)
        self.assertExit(p, IO)
        self.assertOneLineError(p, out)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "no")))
        # a file in the way is I/O too
        f = self.path("file")
        open(f, "w").close()
        p = run("parity", "--suite", "realistic", "--plot-dir", f)
        self.assertExit(p, IO)


if __name__ == "__main__":
    main()
