"""What the CLI writes, and where: a report for every failure (the parser's refusals too),
arguments that are not UTF-8, outputs that would destroy an input, destinations that are not
regular files (devices, pipes, links), long names, and a replaced file's permissions.
"""
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import threading
import time
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rvt_cli import *  # noqa: E402,F401,F403


def run_bytes(*args):
    """Runs rvtemporal with byte-string arguments (not all UTF-8); stdout/stderr decoded with
    replacement, so a test sees what a terminal would."""
    p = subprocess.run([os.fsencode(BIN), *[a if isinstance(a, bytes) else str(a).encode() for a in args]],
                       capture_output=True, timeout=300)
    p.stdout = p.stdout.decode("utf-8", errors="replace")
    p.stderr = p.stderr.decode("utf-8", errors="replace")
    return p


def read(path):
    with open(path, "rb") as f:
        return f.read()


class TestReports(CliTestCase):
    def test_argument_that_is_not_utf8_is_reported_not_a_crash(self):
        p = run_bytes("forward", "--seq", "8", "--backend", b"x\xff", "--json")
        self.assertExit(p, USAGE)
        report = json.loads(p.stdout)
        self.assertEnvelope(report, "forward", USAGE)
        self.assertIn("x\ufffd", report["error"]["message"])
        self.assertOneLineError(p, "--backend")

    def test_output_name_that_is_not_utf8_is_written_and_reported(self):
        out = os.path.join(os.fsencode(self.tmp), b"o\xff.npy")
        report_file = os.path.join(os.fsencode(self.tmp), b"r\xff.json")
        p = run_bytes("forward", "--seq", "8", "--out", out, "--json", "--out-report", report_file)
        self.assertExit(p, OK)
        self.assertEnvelope(json.loads(p.stdout), "forward", OK)
        self.assertTrue(os.path.exists(out))
        self.assertEqual(json.loads(read(report_file))["exit_code"], OK)

    def test_parser_refusals_still_print_and_write_the_report(self):
        for args, command, fragment in [
            (["forward", "--bogus"], "forward", "--bogus"),
            (["forward", "--seq", "-1"], "forward", "--seq"),
            (["blob", "verify"], "blob verify", "files is required"),
            (["--isa", "avx2", "bench", "--reps", "x"], "bench", "--reps"),
        ]:
            with self.subTest(args=args):
                out = self.path("r.json")
                p = run(*args, "--json", "--out-report", out)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, "usage error", fragment)
                for report in (json.loads(p.stdout), json.loads(read(out))):
                    self.assertEnvelope(report, command, USAGE)
                    self.assertIn(fragment, report["error"]["message"])
                os.remove(out)

    def test_refused_command_line_does_not_write_its_report_over_an_input(self):
        q = self.path("q.npy")
        self.assertExit(run("forward", "--seq", "8", "--out", q), OK)
        before = read(q)
        for inputs in (["--q", q, "--k", q, "--v", q], ["--q=" + q, "--k=" + q, "--v=" + q]):
            for report in (["--out-report", q], ["--out-report=" + q]):
                with self.subTest(inputs=inputs[0], report=report[0]):
                    p = run("forward", *inputs, "--bogus", *report)
                    self.assertExit(p, USAGE)
                    self.assertEqual(read(q), before)

    def test_jsonl_stream_ends_with_the_report_line_whatever_refused_it(self):
        q = self.path("q.npy")
        self.assertExit(run("forward", "--seq", "8", "--out", q), OK)
        for args in (["--capacity", "-1"], ["--bogus"], ["--out", ""], ["--q", q, "--k", q, "--v", q, "--out", q],
                     ["--evict", "lru"]):
            with self.subTest(args=args):
                p = run("stream", "--preset", "bench", "--seq", "10", *args, "--jsonl")
                self.assertExit(p, USAGE)
                lines = p.stdout.splitlines()
                self.assertEqual(len(lines), 1, p.stdout)
                self.assertEnvelope(json.loads(lines[0]), "stream", USAGE)

    def test_verbose_logs_on_stderr_only(self):
        plain = run("forward", "--seq", "8")
        p = run("-v", "forward", "--seq", "8")
        self.assertExit(p, OK)
        self.assertEqual(p.stdout.splitlines()[:2], plain.stdout.splitlines()[:2])
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 2, p.stderr)
        self.assertRegex(lines[0], r"^info: forward: rvtemporal \S+ \(.*\), isa \w+ \(best \w+\), \d+ cores$")
        self.assertRegex(lines[1], r"^info: forward: exit 0 \(ok\) after [0-9.]+ ms$")
        debug = run("-vv", "forward", "--seq", "8", "--out-report", self.path("r.json"))
        self.assertIn("debug: option --seq = '8'", debug.stderr)
        self.assertNotIn("option --verbose", debug.stderr)  # flags carry no value (once: 'true' twice)
        self.assertIn("debug: report written to " + self.path("r.json"), debug.stderr)
        refused = run("-v", "forward", "--bogus")
        self.assertExit(refused, USAGE)
        self.assertEqual(refused.stdout, "")  # logging never reaches stdout, not even before -v is parsed

    def test_unknown_command_is_named(self):
        p = run("frobnicate", "--json")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "unknown command 'frobnicate'", "forward")
        self.assertEnvelope(json.loads(p.stdout), "", USAGE)
        # also after global options, flags or with values (was "A subcommand is required")
        for before in (["--json"], ["-q"], ["-vv"], ["--isa", "avx2"], ["--out-report", self.path("r.json")]):
            with self.subTest(before=before):
                p = run(*before, "frobnicate")
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, "unknown command 'frobnicate'")
        # a command's option before the command: the parser's own message, not "unknown command '64'"
        for args in (["--seq", "64", "forward"], ["--threads", "4", "frobnicate"]):
            with self.subTest(args=args):
                p = run(*args)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, "usage error")
                self.assertNotIn("unknown command '" + args[1] + "'", p.stderr)

    def test_report_file_that_cannot_be_written_shows_in_the_stdout_report(self):
        p = run("forward", "--seq", "8", "--json", "--out-report", self.path("missing/r.json"))
        self.assertExit(p, IO)
        self.assertOneLineError(p, "missing/r.json")
        report = json.loads(p.stdout)
        self.assertEnvelope(report, "forward", IO)
        self.assertIn("missing/r.json", report["error"]["message"])

    def test_failed_command_whose_report_cannot_be_written_exits_io_on_one_line(self):
        # A refused command line, then its report not written: the report's failure decides
        # the exit code (4), and the command's own error goes on the same line.
        p = run("forward", "--bogus", "--json", "--out-report", self.path("missing/r.json"))
        self.assertExit(p, IO)
        self.assertOneLineError(p, "missing/r.json", "the command had failed too", "--bogus")
        report = json.loads(p.stdout)
        self.assertEnvelope(report, "forward", IO)
        self.assertIn("the command had failed too", report["error"]["message"])
        # A command that would fail later is refused up front, its report's directory missing:
        # nothing runs.
        p = run("parity", "--suite", "stream", "--gate", "max_abs=0", "--json", "--out-report", self.path("missing/r.json"))
        self.assertExit(p, IO)
        self.assertOneLineError(p, "missing/r.json", "cannot create temp file")
        self.assertEqual(json.loads(p.stdout)["result"], {})
        self.assertFalse(os.path.exists(self.path("missing")))

    def test_outputs_that_cannot_be_written_are_refused_before_the_work(self):
        # --out, --out-report, --plot: a missing directory, a directory, a parent that is a file.
        open(self.path("file"), "w").close()
        for args, bad in ((["bench", "--seq", "64", "--reps", "1", "--decode-at", "none", "--scaling-at", "none"], "--plot"),
                          (["forward", "--seq", "8"], "--out"), (["stream", "--seq", "8"], "--out"),
                          (["blob", "init"], "--out"), (["forward", "--seq", "8"], "--out-report")):
            for target in (self.path("missing/x"), self.tmp, self.path("file/x")):
                with self.subTest(args=args[0], option=bad, target=target):
                    p = run(*args, bad, target, "--json")
                    self.assertExit(p, IO)
                    self.assertOneLineError(p, target)
                    self.assertEqual(json.loads(p.stdout)["result"], {})  # nothing ran
                    self.assertEqual(os.listdir(self.tmp), ["file"])

    def test_stdout_that_cannot_be_written_is_an_io_error(self):
        # A full device, a closed descriptor, a pipe with no reader (SIGPIPE is ignored: EPIPE):
        # exit 4 on one line, and the report file, written before, is written again to say so.
        rep = self.path("r.json")

        def run_to(stdout, *args):
            p = subprocess.run([BIN, *args], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)
            p.stdout = ""  # not captured: it went to `stdout`
            return p

        with open("/dev/full", "w") as full:
            p = run_to(full, "forward", "--seq", "64", "--json", "--out-report", rep)
        self.assertExit(p, IO)
        self.assertOneLineError(p, "stdout: write failed")
        report = json.loads(open(rep).read())
        self.assertEqual((report["ok"], report["exit_code"]), (False, IO))
        p = run_to(subprocess.DEVNULL, "forward", "--seq", "64", "--json")
        self.assertExit(p, OK)
        read_end, write_end = os.pipe()
        os.close(read_end)  # no reader from the start
        try:
            p = run_to(write_end, "stream", "--seq", "64", "--jsonl", "--out", self.path("s.npy"))
        finally:
            os.close(write_end)
        self.assertExit(p, IO)  # not -13 (SIGPIPE)
        self.assertOneLineError(p, "stdout: write failed while writing the step records")
        self.assertEqual(os.listdir(self.tmp), ["r.json"])  # stopped at the first record: no --out, no temp file
        # stdout closed: the same
        p = subprocess.run([BIN, "forward", "--seq", "16", "--json"], stderr=subprocess.PIPE, text=True, timeout=120,
                           preexec_fn=lambda: os.close(1))
        self.assertEqual(p.returncode, IO, p.stderr)
        self.assertIn("stdout: write failed", p.stderr)

    def test_control_bytes_in_a_message_stay_on_one_line(self):
        p = run("blob", "inspect", self.path("no\nsuch\x1b[31m"))
        self.assertExit(p, IO)
        self.assertOneLineError(p, "no\\nsuch\\x1b[31m: cannot open")

    def test_two_outputs_on_stdout_are_refused(self):
        # Refused, and the refusal's report does not go to stdout a second time: none at all with
        # two outputs there, one with --json or --jsonl (as a parser refusal gives it).
        p = run("forward", "--seq", "4", "--out", "/dev/stdout", "--out-report", "/dev/stdout")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--out /dev/stdout and --out-report /dev/stdout both want stdout")
        self.assertEqual(p.stdout, "")
        for args in (["forward", "--seq", "4", "--json"], ["stream", "--seq", "4", "--jsonl"],
                     ["stream", "--bogus", "--json"], ["stream", "--bogus", "--jsonl"]):
            with self.subTest(args=args):
                p = run(*args, "--out-report", "/dev/stdout")
                self.assertExit(p, USAGE)
                self.assertEnvelope(json.loads(p.stdout), args[0], USAGE)  # one report: parses whole

    def test_input_read_through_stdin_is_not_overwritten(self):
        q = self.path("q.npy")
        self.assertExit(run("forward", "--seq", "6", "--out", q), OK)
        before = open(q, "rb").read()
        k = self.path("k.npy")
        with open(q, "rb") as stdin:
            p = subprocess.run([BIN, "forward", "--q", "/dev/stdin", "--k", q, "--v", q, "--out", k], stdin=stdin,
                               capture_output=True, text=True, timeout=120)
        self.assertExit(p, OK)  # a different output: fine
        with open(q, "rb") as stdin:
            p = subprocess.run([BIN, "forward", "--q", "/dev/stdin", "--k", k, "--v", k, "--out", q], stdin=stdin,
                               capture_output=True, text=True, timeout=120)
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--out " + q + ": the same file as --q, an input")
        self.assertEqual(open(q, "rb").read(), before)


class TestSuspectValues(CliTestCase):
    def test_empty_values_are_usage_errors(self):
        for args, option in [
            (["forward", "--q", "", "--k", "", "--v", ""], "--q"),  # not "no files": generated data
            (["forward", "--seq", "8", "--out", ""], "--out"),
            (["forward", "--seq", "8", "--out-report", ""], "--out-report"),
            (["bench", "--seq", "64", "--plot", ""], "--plot"),
            (["blob", "init", "--out", ""], "--out"),
            (["parity", "--suite", "sweep", "--plot-dir", ""], "--plot-dir"),
        ]:
            with self.subTest(args=args):
                p = run(*args)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, option + ": empty value")

    def test_output_that_names_an_input_is_refused_and_the_input_kept(self):
        q = self.path("q.npy")
        self.assertExit(run("forward", "--seq", "8", "--q-heads", "2", "--kv-heads", "2", "--dim", "4", "--out", q), OK)
        before = read(q)
        os.mkdir(self.path("d"))
        os.link(q, self.path("hard.npy"))
        files = ["--q", q, "--k", q, "--v", q]
        for extra, fragment in [
            (["--out", q], "--out " + q + ": the same file as --q"),
            (["--out", self.path("d/../q.npy")], "the same file as --q"),
            (["--out", self.path("hard.npy")], "the same file as --q"),
            (["--out-report", q], "--out-report " + q + ": the same file as --q"),
        ]:
            with self.subTest(extra=extra):
                p = run("forward", *files, *extra)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, fragment, "it would be overwritten")
                self.assertEqual(read(q), before)

    def test_report_over_an_input_is_refused_before_an_empty_value(self):
        blob = self.path("m.rvne")
        self.assertExit(run("blob", "init", "--out", blob), OK)
        before = read(blob)
        p = run("forward", "--blob", blob, "--gen-frames", "8", "--out-report", blob, "--pool", "")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "the same file as --blob")
        self.assertEqual(read(blob), before)

    def test_outputs_through_a_dangling_link_to_the_other_are_refused(self):
        os.symlink("r.json", self.path("dl"))
        p = run("forward", "--seq", "16", "--out", self.path("dl"), "--out-report", self.path("r.json"))
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "(both outputs)")

    def test_two_outputs_on_one_file_are_refused(self):
        same = self.path("same.npy")
        p = run("forward", "--seq", "8", "--out", same, "--out-report", same)
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--out-report " + same + ": the same file as --out (both outputs)")
        self.assertFalse(os.path.exists(same))

    def test_report_over_a_verified_blob_is_refused(self):
        blob = self.path("m.rvne")
        self.assertExit(run("blob", "init", "--out", blob), OK)
        before = read(blob)
        for args in (["blob", "verify", blob], ["blob", "inspect", blob]):
            with self.subTest(args=args):
                p = run(*args, "--out-report", blob)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, "the same file as the file", "argument, an input")
                self.assertEqual(read(blob), before)

    def test_parity_refuses_files_no_selected_suite_reads(self):
        missing = self.path("nope.npy")
        p = run("parity", "--suite", "gqa,model", "--q", missing, "--k", missing, "--v", missing)
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--q/--k/--v: no selected suite reads them")

    def test_stream_dense_baseline_only_with_a_dense_blob_head(self):
        blob = self.path("m.rvne")
        self.assertExit(run("blob", "init", "--out", blob), OK)
        for args in (["--blob", blob, "--gen-frames", "4", "--dense-baseline"],
                     ["--blob", blob, "--gen-frames", "4", "--dense-baseline", "--evict", "h2o", "--capacity", "40"],
                     ["--seq", "8", "--dense-baseline"]):
            with self.subTest(args=args):
                p = run("stream", *args)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, "--dense-baseline is for --blob with --backend dense")
        p = run("stream", "--blob", blob, "--gen-frames", "4", "--backend", "dense", "--dense-baseline")
        self.assertExit(p, OK)

    def test_number_messages_quote_what_was_typed(self):
        blob = self.path("m.rvne")
        self.assertExit(run("blob", "init", "--out", blob), OK)
        for args, fragment in [
            (["blob", "verify", blob, "--expect-xxh3", "zz"], "--expect-xxh3: 'zz' is not a hex number"),
            (["forward", "--seq", "8", "--seed", "-1"], "--seed: '-1' is not a decimal or 0x-hex number"),
            (["forward", "--seq", "8", "--seed", "0x"], "--seed: '0x' has no digits"),
        ]:
            with self.subTest(args=args):
                p = run(*args)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, fragment)


class TestConflicts(CliTestCase):
    def test_options_that_contradict_each_other_are_refused(self):
        blob, frames = self.path("m.rvne"), self.path("frames.npy")
        self.assertExit(run("blob", "init", "--out", blob), OK)
        np.save(frames, np.ones((5, 16), np.float32))
        for args, fragment in [
            (["forward", "--blob", blob, "--frames", frames, "--gen-frames", "3"], "--frames and --gen-frames are exclusive"),
            (["stream", "--blob", blob, "--frames", frames, "--gen-frames", "3"], "--frames and --gen-frames are exclusive"),
            (["bench", "--seq", "64", "--json", "--format", "md"], "--format md and --json both want stdout"),
            (["bench", "--seq", "64", "--json", "--format", "csv"], "--format csv and --json both want stdout"),
        ]:
            with self.subTest(args=args):
                p = run(*args)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, fragment)

    def test_seed_zero_blob_is_written_with_a_warning(self):
        p = run("blob", "init", "--out", self.path("zero.rvne"), "--seed", "0")
        self.assertExit(p, OK)
        self.assertOneLineError(p, "warning: --seed 0", "every weight is -0.1")
        weights = np.frombuffer(read(self.path("zero.rvne"))[24:-4], dtype="<f4")
        self.assertTrue(np.all(weights == np.float32(-0.1)))


class TestNonFiniteOutputs(CliTestCase):
    def test_overflowing_finite_inputs_warn_and_count(self):
        x = (np.random.default_rng(1).standard_normal((16, 2, 8)) * 1e20).astype(np.float32)
        q = self.path("big.npy")
        np.save(q, x)
        p, report = run_json("forward", "--q", q, "--k", q, "--v", q, "--backend", "dense", "--isa", "scalar")
        self.assertExit(p, OK)
        stats = report["result"]["output"]["stats"]
        self.assertGreater(stats["nan_count"] + stats["inf_count"], 0)
        self.assertOneLineError(p, "warning: the output holds", "the inputs were finite", "overflowed")
        quiet = run("forward", "--q", q, "--k", q, "--v", q, "--backend", "dense", "--isa", "scalar", "-q")
        self.assertExit(quiet, OK)
        self.assertEqual(quiet.stderr, "")

    def test_warning_names_allow_nonfinite_when_given(self):
        x = np.ones((8, 2, 4), np.float32)
        x[3, 1, 2] = np.nan
        q = self.path("nan.npy")
        np.save(q, x)
        p = run("forward", "--q", q, "--k", q, "--v", q, "--allow-nonfinite")
        self.assertExit(p, OK)
        self.assertOneLineError(p, "warning: the output holds", "--allow-nonfinite let non-finite inputs through")

    def test_nan_logits_have_no_argmax(self):
        blob = self.path("m.rvne")
        self.assertExit(run("blob", "init", "--out", blob), OK)
        data = bytearray(read(blob))
        weights = np.frombuffer(bytes(data[24:-4]), dtype="<f4") * np.float32(1e29)
        data[24:-4] = weights.astype("<f4").tobytes()
        data[-4:] = (zlib.crc32(bytes(data[:-4])) & 0xFFFFFFFF).to_bytes(4, "little")
        with open(blob, "wb") as f:
            f.write(data)
        p, report = run_json("forward", "--blob", blob, "--gen-frames", "4")
        self.assertExit(p, OK)
        result = report["result"]
        self.assertIsNone(result["argmax"])
        self.assertEqual(result["output"]["stats"]["nan_count"], 4)
        for key in ("min", "max", "mean", "std"):
            self.assertIsNone(result["output"]["stats"][key])
        self.assertIn("argmax none (NaN logits)", run("forward", "--blob", blob, "--gen-frames", "4").stdout)


class TestSignals(CliTestCase):
    def test_killed_mid_write_leaves_no_temp_file(self):
        # A 1 KiB file-size limit with SIGXFSZ at its default action: the write past it ends the
        # process by the signal, as Ctrl-C or a kill would, with the temp file half written.
        out = self.path("o.npy")
        with open(out, "wb") as f:
            f.write(b"previous")

        def limit():
            resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)

        p = subprocess.run([BIN, "forward", "--seq", "64", "--out", out], capture_output=True, timeout=300,
                           preexec_fn=limit)
        self.assertEqual(p.returncode, -signal.SIGXFSZ, p.stderr)
        self.assertEqual(self.no_temp_files(self.tmp), [])
        self.assertEqual(read(out), b"previous")


class TestDestinations(CliTestCase):
    def null_device(self):
        """A character device to write to. As root, a private node of /dev/null's kind: a
        binary that replaced its destination would replace that one, not the system's."""
        if os.geteuid() != 0:
            return "/dev/null"  # not replaceable without root
        node = self.path("null")
        try:
            os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            os.close(os.open(node, os.O_WRONLY))  # a nodev mount makes the node but refuses to open it
        except OSError as e:
            self.skipTest(f"cannot make a usable device node here: {e}")
        return node

    def test_character_device_is_written_not_replaced(self):
        device = self.null_device()
        for option in ("--out", "--out-report"):
            with self.subTest(option=option):
                p = run("forward", "--seq", "8", option, device)
                self.assertExit(p, OK)
                self.assertTrue(stat.S_ISCHR(os.lstat(device).st_mode))

    def test_own_stdout_redirected_to_a_file_is_appended_to(self):
        for spelling in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", "/proc/thread-self/fd/1"):
            with self.subTest(spelling=spelling):
                log = self.path("log.txt")
                with open(log, "wb") as f:
                    f.write(b"previous line\n")
                with open(log, "ab") as out:
                    p = subprocess.run([BIN, "forward", "--seq", "16", "--out", spelling], stdout=out,
                                       stderr=subprocess.PIPE, timeout=300)
                self.assertEqual(p.returncode, OK, p.stderr)
                data = read(log)
                self.assertTrue(data.startswith(b"previous line\n\x93NUMPY"), data[:40])
                self.assertEqual(len(data), len(b"previous line\n") + 128 + 16 * 4 * 32 * 4)  # the array alone
                self.assertIn(b"sparse attention: seq 16", p.stderr)  # the text report went apart

    def test_data_on_stdout_keeps_stdout_for_the_data(self):
        blob = self.path("stdout.rvne")
        with open(blob, "wb") as out:
            p = subprocess.run([BIN, "blob", "init", "--out", "/dev/stdout"], stdout=out, stderr=subprocess.PIPE,
                               timeout=300)
        self.assertEqual(p.returncode, OK, p.stderr)
        self.assertIn(b"wrote /dev/stdout", p.stderr)
        self.assertExit(run("blob", "verify", blob, "--expect-xxh3", "7dfd4dd2b7a1928e"), OK)
        for flag in ("--json", "--jsonl"):
            with self.subTest(flag=flag):
                command = "stream" if flag == "--jsonl" else "forward"
                p = run(command, "--seq", "8", "--out", "/dev/stdout", flag)
                self.assertExit(p, USAGE)
                self.assertIn(f"--out /dev/stdout and {flag} both want stdout", p.stderr)

    def test_own_descriptor_keeps_the_force_rule(self):
        blob = self.path("m.rvne")
        self.assertExit(run("blob", "init", "--out", blob), OK)
        before = read(blob)
        with open(blob, "r+b") as f:
            p = subprocess.run([BIN, "blob", "init", "--out", f"/dev/fd/{f.fileno()}"], pass_fds=(f.fileno(),),
                               capture_output=True, text=True, timeout=300)
        self.assertExit(p, IO)
        self.assertOneLineError(p, "exists (use --force to overwrite)")
        self.assertEqual(read(blob), before)

    def test_own_stdout_as_a_non_blocking_pipe_gets_every_byte(self):
        r, w = os.pipe()
        os.set_blocking(w, False)  # the caller's choice, on the description rvtemporal shares
        got = []
        reader = threading.Thread(target=lambda: got.append(os.fdopen(r, "rb").read()), daemon=True)
        p = subprocess.Popen([BIN, "forward", "--seq", "512", "--out", "/dev/stdout", "-q"], stdout=w,
                             stderr=subprocess.PIPE)
        os.close(w)
        time.sleep(0.5)  # let the pipe fill before anyone reads it
        reader.start()
        err = p.communicate(timeout=300)[1]
        reader.join(timeout=60)
        self.assertEqual(p.returncode, OK, err)
        self.assertTrue(got[0].startswith(b"\x93NUMPY"))
        self.assertGreater(len(got[0]), 512 * 4 * 32 * 4)

    def test_link_loop_is_an_io_error(self):
        os.symlink("b", self.path("a"))
        os.symlink("a", self.path("b"))
        p = run("forward", "--seq", "16", "--out", self.path("a"))
        self.assertExit(p, IO)
        self.assertOneLineError(p, "too many levels of symbolic links")
        self.assertTrue(os.path.islink(self.path("a")))
        # Also where only the checks meet it: a refused command line (whose report, into the
        # loop, then fails: io decides), a loop as an input.
        for args, code in ((["--out-report", self.path("a"), "forward", "--bogus"], IO),
                           (["--out-report", self.path("r.json"), "forward", "--q=" + self.path("a"), "--bogus"], USAGE)):
            with self.subTest(args=args):
                self.assertExit(run(*args), code)

    def test_pipe_is_written_not_replaced(self):
        fifo = self.path("fifo")
        os.mkfifo(fifo)
        got = []
        reader = threading.Thread(target=lambda: got.append(read(fifo)), daemon=True)
        reader.start()
        p = run("forward", "--seq", "8", "--out", fifo)
        if stat.S_ISFIFO(os.lstat(fifo).st_mode):
            try:  # release a reader still waiting for a writer (a binary that did not open the pipe)
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        reader.join(timeout=60)
        self.assertExit(p, OK)
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))
        self.assertTrue(got and got[0].startswith(b"\x93NUMPY"))

    def test_link_stays_a_link_and_its_target_is_replaced(self):
        for target_exists in (True, False):
            with self.subTest(target_exists=target_exists):
                target, link = self.path(f"target{target_exists}.npy"), self.path(f"link{target_exists}.npy")
                if target_exists:
                    with open(target, "wb") as f:
                        f.write(b"old")
                os.symlink(os.path.basename(target), link)
                self.assertExit(run("forward", "--seq", "8", "--out", link), OK)
                self.assertTrue(os.path.islink(link))
                self.assertTrue(read(target).startswith(b"\x93NUMPY"))
                self.assertEqual(self.no_temp_files(self.tmp), [])

    def test_longest_legal_name_is_written(self):
        name = self.path("a" * 251 + ".npy")  # 255 bytes, NAME_MAX
        p = run("forward", "--seq", "8", "--out", name)
        self.assertExit(p, OK)
        self.assertTrue(os.path.exists(name))
        self.assertEqual(self.no_temp_files(self.tmp), [])

    def test_replaced_file_keeps_its_permissions(self):
        out = self.path("o.npy")
        with open(out, "wb") as f:
            f.write(b"old")
        os.chmod(out, 0o604)  # no umask gives this: a new file would not get it
        self.assertExit(run("forward", "--seq", "8", "--out", out), OK)
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o604)
        self.assertTrue(read(out).startswith(b"\x93NUMPY"))


if __name__ == "__main__":
    main()
