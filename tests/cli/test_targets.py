"""Tests of scripts/check_targets.py, the issue-6 targets re-check: one --quick run of the real
suite (every command exits 0, every target gets a verdict that follows from its values), then
--from over edited copies of those reports, so each verdict's boundary and the exit codes are
checked on the real report layout. The verdicts of the quick run itself depend on this machine
and are not asserted; no timed assertions.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rvt_cli import *  # noqa: E402,F401,F403

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "check_targets.py")
VERDICTS = {"met", "missed", "not measured", "not evaluated"}
FAST_VS_REF = "Sparse, bench preset, N = 1024, one thread: fast kernel vs scalar reference"
EFFICIENCY = "Sparse vs dense speedup / edge ratio, N >= 1024, one and two threads"


def check_targets(*args):
    return subprocess.run([sys.executable, SCRIPT, "--bin", BIN, *map(str, args)], capture_output=True, text=True,
                          timeout=600)


class TargetsTest(CliTestCase):
    @classmethod
    def setUpClass(cls):
        cls._quick = tempfile.TemporaryDirectory()
        cls.quick = os.path.join(cls._quick.name, "q")
        cls.proc = check_targets("--quick", "--out", cls.quick)

    @classmethod
    def tearDownClass(cls):
        cls._quick.cleanup()

    def judged(self, directory):
        with open(os.path.join(directory, "targets.json")) as f:
            return {t["target"]: t for t in json.load(f)["targets"]}

    def edited_copy(self, name, edit):
        """A copy of the quick run with edit(result) applied to report `name`."""
        copy = self.path("edited")
        shutil.copytree(self.quick, copy)
        path = os.path.join(copy, name + ".json")
        with open(path) as f:
            report = json.load(f)
        edit(report["result"])
        with open(path, "w") as f:
            json.dump(report, f)
        return copy

    def test_quick_run_judges_every_target(self):
        self.assertIn(self.proc.returncode, (OK, CHECK_FAILED), self.proc.stderr)
        with open(os.path.join(self.quick, "runs.json")) as f:
            runs = json.load(f)
        self.assertEqual([r["name"] for r in runs["runs"]], ["L1", "M1", "S1", "DEC1", "D64", "SCALE", "FORWARD"])
        for r in runs["runs"]:
            self.assertEqual(r["exit_code"], 0, r)
            self.assertRegex(r["start_utc"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertGreater(r["peak_rss_bytes"], 0)
        self.assertTrue(runs["quick"])
        targets = self.judged(self.quick)
        self.assertEqual(len(targets), 17)
        # The share of the concurrent bound the threaded sparse call got, per S row from N = 4096
        # (none where bench ran no calls on every CPU at once: one CPU, or more CPUs than threads).
        share = next(t for name, t in targets.items() if name.startswith("Sparse, two threads' speedup over that"))
        with open(os.path.join(self.quick, "S1.json")) as f:
            rows = json.load(f)["result"]["scaling"]["rows"]
        expected = [r["sparse"]["speedup"] / r["sparse"]["concurrent_bound"] for r in rows
                    if r["seq"] >= 4096 and r["sparse"]["concurrent_bound"] is not None]
        self.assertEqual(len(share["values"]), len(expected))
        for v, e in zip(share["values"], expected):
            self.assertAlmostEqual(v["value"], e, places=3)
        for t in targets.values():
            self.assertIn(t["verdict"], VERDICTS, t)
            if t["verdict"] == "met":
                self.assertTrue(t["values"] and not t["failing"], t)
            elif t["verdict"] == "missed":
                self.assertTrue(t["failing"], t)
        # These are measured even by the quick suite.
        for name in (FAST_VS_REF, EFFICIENCY):
            self.assertIn(targets[name]["verdict"], ("met", "missed"), targets[name])
        self.assertEqual(self.proc.returncode, CHECK_FAILED if any(
            t["verdict"] == "missed" for t in targets.values()) else OK)
        # The Markdown table names every target and every command.
        for name in targets:
            self.assertIn(name, self.proc.stdout)
        self.assertIn("rvtemporal forward --preset bench --seq 65536", self.proc.stdout)

    def test_boundaries_on_edited_reports(self):
        def fast_vs_ref(value):
            def edit(result):
                row = next(r for r in result["prefill"] if r["seq"] == 1024)
                row["fast_vs_ref"] = value
            return edit

        for value, verdict in ((10.0, "met"), (9.99, "missed")):
            directory = self.edited_copy("L1", fast_vs_ref(value))
            proc = check_targets("--from", directory)
            t = self.judged(directory)[FAST_VS_REF]
            self.assertEqual(t["verdict"], verdict, t)
            self.assertEqual([v["value"] for v in t["values"]], [value])
            if verdict == "missed":
                self.assertExit(proc, CHECK_FAILED)
                self.assertEqual(t["failing"], ["L1 N=1024"])
            shutil.rmtree(directory)

        def efficiency(value):
            def edit(result):
                for r in result["prefill"]:
                    r["speedup"]["efficiency"] = value
            return edit

        for value, verdict in ((0.5, None), (0.499, "missed")):
            directory = self.edited_copy("M1", efficiency(value))
            check_targets("--from", directory)
            t = self.judged(directory)[EFFICIENCY]
            m1 = [v for v in t["values"] if v["run"].startswith("M1 ")]
            self.assertTrue(m1 and all(v["value"] == value for v in m1), t)
            if verdict:
                self.assertEqual(t["verdict"], verdict)
                self.assertIn("M1 N=1024", t["failing"])
            else:
                self.assertFalse([f for f in t["failing"] if f.startswith("M1 ")], t)
            shutil.rmtree(directory)

    def test_missing_report_is_an_error(self):
        directory = self.edited_copy("DEC1", lambda result: None)
        os.remove(os.path.join(directory, "DEC1.json"))
        os.remove(os.path.join(directory, "targets.json"))
        proc = check_targets("--from", directory)
        self.assertExit(proc, IO)
        self.assertOneLineError(proc, "DEC1.json")
        self.assertFalse(os.path.exists(os.path.join(directory, "targets.json")))

    def test_usage(self):
        self.assertExit(check_targets("--repeat", "0", "--from", self.quick), USAGE)
        self.assertExit(check_targets("--no-such-option"), USAGE)


if __name__ == "__main__":
    main()
