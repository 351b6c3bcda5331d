"""Hostile inputs (issue 7): huge or overflowing header sizes, N = 0 / 1, window/block far
larger than N, globals out of range, bad or absurd option values, outputs that cannot be
written. Exact exit codes and messages; a failing run leaves the previous output intact.
"""
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rvt_cli import *  # noqa: E402,F401,F403


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def npy_with_header(shape_text, data):
    """A .npy file whose header claims `shape_text` whatever `data` holds."""
    h = ("{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % shape_text).encode()
    h += b" " * ((-(10 + len(h) + 1)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data


class TestHostileFiles(CliTestCase):
    def qkv(self, name, data):
        p = self.path(name)
        write(p, data)
        return ["--q", p, "--k", p, "--v", p]

    def test_header_claiming_huge_size_is_refused_before_allocating(self):
        # 2^40 * 1 * 4 floats = 16 TiB claimed, 16 bytes present.
        p = run("forward", *self.qkv("huge.npy", npy_with_header("(1099511627776, 1, 4)", b"\0" * 16)))
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p, "huge.npy", "needs 17592186044416 bytes, but 16 bytes follow the header")

    def test_an_input_past_the_free_memory_is_refused_naming_it(self):
        # A real (sparse) file whose data is 1.5 times the free memory: once its bytes were
        # read whole into a vector nothing checked, and the OOM killer ended the run (137).
        with open("/proc/meminfo") as f:
            free = next((int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")), 0)
        if free < 1 << 30:
            self.skipTest("under 1 GiB free")
        rows = int(free * 1.5) // (4 * 4) + 1  # one head of dim 4, f32
        p = self.path("large.npy")
        header = npy_with_header(f"({rows}, 1, 4)", b"")
        with open(p, "wb") as f:
            f.write(header)
            f.truncate(len(header) + rows * 16)
        r = run("forward", "--q", p, "--k", p, "--v", p)
        self.assertExit(r, BAD_INPUT)
        self.assertOneLineError(r, p + ": " + str(rows * 4) + " values need more memory than is available")

    def test_shape_whose_product_overflows_64_bits(self):
        p = run("forward", *self.qkv("ovf.npy", npy_with_header("(1099511627776, 1099511627776, 4)", b"\0" * 16)))
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p, "ovf.npy", "too large", "overflows 64 bits")

    def test_blob_header_claiming_huge_shape(self):
        blob = self.path("tiny.rvne")
        self.assertExit(run("blob", "init", "--input-dim", "2", "--q-heads", "1", "--kv-heads", "1",
                            "--head-dim", "2", "--layers", "1", "--classes", "2", "--out", blob), OK)
        data = bytearray(read(blob))
        data[8:10] = struct.pack("<H", 65535)   # input_dim
        data[14:16] = struct.pack("<H", 65535)  # head_dim
        data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])) & 0xFFFFFFFF)
        write(blob, bytes(data))
        p = run("forward", "--blob", blob, "--gen-frames", "4")
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p, "tiny.rvne", "payload holds 20 f32 values but the layout for this shape needs 17179475970")


    def test_fifo_without_a_writer_is_refused_not_waited_on(self):
        # open() of a FIFO blocks until a writer comes; every input is opened non-blocking.
        fifo = self.path("fifo.npy")
        os.mkfifo(fifo)
        blob = self.path("m.rvne")
        self.assertExit(run("blob", "init", "--out", blob, "-q"), OK)
        for args in (["forward", "--q", fifo, "--k", fifo, "--v", fifo], ["blob", "verify", fifo],
                     ["blob", "inspect", fifo], ["parity", "--suite", "model", "--blob", fifo],
                     ["forward", "--blob", blob, "--frames", fifo]):
            with self.subTest(args=args[:2]):
                p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)
                self.assertExit(p, IO)
                if args[1] == "verify":  # the verdicts are the report; stderr counts the failures
                    self.assertIn("fifo.npy: not a regular file [io]", p.stdout)
                else:
                    self.assertOneLineError(p, "fifo.npy", "not a regular file")


class TestHostileShapes(CliTestCase):
    def forward(self, *args):
        out = self.path("o.npy")
        p = run("forward", "--dim", "4", "-o", out, *args)
        self.assertExit(p, OK)
        return np.load(out)

    def test_n_zero_and_n_one(self):
        self.assertEqual(self.forward("--seq", "0").shape, (0, 4, 4))
        one = self.forward("--seq", "1")
        self.assertEqual(one.shape, (1, 4, 4))
        self.assertTrue(np.all(np.isfinite(one)))
        # With one token, attention returns V itself: dense agrees.
        np.testing.assert_allclose(one, self.forward("--seq", "1", "--backend", "dense"), atol=1e-6)

    def test_window_and_block_far_larger_than_n_is_dense(self):
        sparse = self.forward("--seq", "16", "--window", "100000", "--block", "100000", "--globals", "none",
                              "--no-log-stride", "--no-landmarks")
        dense = self.forward("--seq", "16", "--backend", "dense")
        np.testing.assert_allclose(sparse, dense, atol=1e-5)

    def test_globals_out_of_range_are_ignored(self):
        far = self.forward("--seq", "16", "--window", "2", "--globals", "99,100000")
        none = self.forward("--seq", "16", "--window", "2", "--globals", "none")
        np.testing.assert_array_equal(far, none)


class TestHostileOptions(CliTestCase):
    def test_threads_the_system_refuses_are_unsupported_not_a_bug(self):
        # 256 MiB of address space holds no 32 thread stacks of 8 MiB: std::thread throws
        # std::system_error, once exit 9 ("internal error"); now exit 5 naming the limit.
        limit = 256 << 20

        def cap():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        if subprocess.run([BIN, "--version"], capture_output=True, preexec_fn=cap).returncode != 0:
            self.skipTest("this build does not run in 256 MiB of address space (a sanitizer's)")
        for args in (["parity", "--suite", "reference", "--threads", "32"],
                     ["forward", "--seq", "4096", "--backend", "dense", "--threads", "32"]):
            with self.subTest(args=args[0]):
                p = subprocess.run([BIN, *args], capture_output=True, text=True, preexec_fn=cap, timeout=120)
                self.assertExit(p, UNSUPPORTED)
                self.assertOneLineError(p, "cannot start a worker thread", "--threads")

    def test_a_kv_cache_past_memory_is_refused_before_it_is_written(self):
        # K alone fits in what is free, K and V together do not: the cache must be refused
        # before K is zero-filled (once K's gigabytes were written first, then V refused).
        def cap():
            resource.setrlimit(resource.RLIMIT_AS, (256 << 20, 256 << 20))

        if subprocess.run([BIN, "--version"], capture_output=True, preexec_fn=cap).returncode != 0:
            self.skipTest("a sanitizer's allocator writes shadow memory for each block")
        with open("/proc/meminfo") as f:
            free = next((int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")), 0)
        if free < 2 << 30:
            self.skipTest("under 2 GiB free")
        capacity = int(free * 0.6) // 16  # one kv head of dim 4, f32: 16 bytes a position
        # A wrapper whose only child is the binary reports that child's peak RSS.
        wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                   "print('maxrss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
                   "sys.exit(r.returncode)")
        p = subprocess.run([sys.executable, "-c", wrapper, BIN, "stream", "--seq", "16", "--capacity", str(capacity),
                            "--q-heads", "1", "--kv-heads", "1", "--dim", "4"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, BAD_INPUT, p.stderr)
        error, rss = p.stderr.strip().split("\n")
        self.assertIn(f"kv cache of capacity {capacity} does not fit in memory", error)
        self.assertLess(int(rss.split()[1]) * 1024, capacity * 16 // 4, "K was written before V was refused")

    def test_bad_isa_names_its_source(self):
        p = run("forward", "--seq", "4", "--isa", "sse9")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--isa: 'sse9' is not one of auto, scalar, avx2, avx512")
        with isa_env("sse9"):
            p = run("forward", "--seq", "4")
            self.assertExit(p, USAGE)
            self.assertOneLineError(p, "RVT_ISA: 'sse9' is not one of")
            self.assertExit(run("forward", "--seq", "4", "--isa", "scalar"), OK)  # the option wins

    def test_bad_numbers_are_usage_errors(self):
        cases = [
            (["--seq", "1e3"], "--seq"),
            (["--seq", "abc"], "--seq"),
            (["--threads", "-1"], "--threads"),
            (["--block", "0"], "--block: the block size must be > 0"),
            (["--seed", "0x"], "--seed"),
            (["--seed", "18446744073709551616"], "does not fit in 64 bits"),
            (["--globals", "1,,2"], "--globals"),
            (["--globals", "5,12345678901234567890123"], "'12345678901234567890123' is too large"),
            (["--globals", "-1"], "--globals"),
        ]
        for args, fragment in cases:
            with self.subTest(args=args):
                p = run("forward", "--seq", "4", "--dim", "4", *args) if args[0] != "--seq" else \
                    run("forward", "--dim", "4", *args)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, fragment)

    def test_flag_value_out_of_range_is_a_usage_error(self):
        # Fuzz finding 1: CLI11's std::stoll on a flag value escaped main() (abort, exit 134).
        for flag in ("--no-causal=55555555555555555555", "--no-causal=-99999999999999999999", "--causal=x"):
            with self.subTest(flag=flag):
                p = run("forward", "--seq", "4", "--dim", "4", flag)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, "usage error")

    def test_negative_or_absurd_counts_are_usage_errors(self):
        # CLI11 2.1 would wrap "-1" / saturate 20 digits into a huge size_t; count options are
        # checked as plain digits (at most 18) first.
        for opt in ("--window", "--block", "--seq", "--q-heads", "--kv-heads", "--dim", "--threads"):
            for value in ("-1", "99999999999999999999", "1.5", "x"):
                with self.subTest(opt=opt, value=value):
                    p = run("forward", "--seq", "4", "--dim", "4", opt, value)
                    self.assertExit(p, USAGE)
                    self.assertOneLineError(p, opt, value)
        for value in ("-1", "99999999999999999999"):
            with self.subTest(opt="--capacity", value=value):
                p = run("stream", "--seq", "4", "--dim", "4", "--capacity", value)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, "--capacity")

    def test_thread_counts_past_an_unsigned_are_usage_errors(self):
        # Digits that pass the count check but not CLI11's conversion to unsigned ("Could not convert").
        for command in (["forward", "--seq", "4", "--dim", "4"], ["stream", "--seq", "4", "--dim", "4"],
                        ["bench", "--seq", "32", "--decode-at", "none"], ["parity", "--suite", "realistic"]):
            with self.subTest(command=command[0]):
                p = run(*command, "--threads", "99999999999")
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, "--threads", "'99999999999' is more than 4294967295")

    def test_bench_and_parity_counts_are_usage_errors(self):
        # bench's count options go through the same check (bb3b2b3); its list options (--seq,
        # --decode-at, --scaling-at) refuse anything but comma-separated digits. Nothing is run.
        for opt in ("--q-heads", "--kv-heads", "--dim", "--window", "--block", "--reps", "--warmup", "--threads",
                    "--decode-steps", "--dense-decode-steps", "--no-dense-above", "--scaling-rounds"):
            for value in ("-1", "99999999999999999999"):
                with self.subTest(command="bench", opt=opt, value=value):
                    p = run("bench", "--seq", "32", "--decode-at", "none", opt, value)
                    self.assertExit(p, USAGE)
                    self.assertOneLineError(p, opt, value)
        for opt, value in (("--seq", "-5"), ("--seq", "64,-5"), ("--seq", "99999999999999999999"),
                           ("--decode-at", "-1"), ("--scaling-at", "-1")):
            with self.subTest(command="bench", opt=opt, value=value):
                p = run("bench", opt, value) if opt == "--seq" else run("bench", "--seq", "32", opt, value)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, opt, value)
        for opt in ("--threads", "--seq", "--window"):
            for value in ("-1", "99999999999999999999"):
                with self.subTest(command="parity", opt=opt, value=value):
                    p = run("parity", "--suite", "realistic", opt, value)
                    self.assertExit(p, USAGE)
                    self.assertOneLineError(p, opt, value)
        # Well-formed but impossible sizes are refused before allocating (exit 3), as in forward.
        for args in (["bench", "--seq", "100000000000", "--decode-at", "none"],
                     ["bench", "--seq", "32", "--decode-at", "100000000000"],
                     ["bench", "--seq", "32", "--decode-at", "none", "--threads", "2", "--scaling-at", "100000000000"],
                     ["parity", "--suite", "realistic", "--seq", "100000000000"]):
            with self.subTest(args=args):
                p = run(*args, "-q")
                self.assertExit(p, BAD_INPUT)
                self.assertOneLineError(p, "too large")

    def test_huge_seq_is_refused_before_allocating(self):
        for command in ("forward", "stream"):
            with self.subTest(command=command):
                p = run(command, "--dim", "4", "--seq", "100000000000")
                self.assertExit(p, BAD_INPUT)
                self.assertOneLineError(p, "too large", "(--seq 100000000000, --q-heads 4, --kv-heads 4, --dim 4)")


class TestHostileOutputs(CliTestCase):
    def test_output_in_missing_directory(self):
        out = self.path("missing/dir/o.npy")
        p = run("forward", "--seq", "4", "--dim", "4", "-o", out)
        self.assertExit(p, IO)
        self.assertOneLineError(p, out, "No such file or directory")
        self.assertFalse(os.path.exists(os.path.dirname(out)))

    def test_output_is_a_directory(self):
        p = run("forward", "--seq", "4", "--dim", "4", "-o", self.tmp)
        self.assertExit(p, IO)
        self.assertOneLineError(p, "is a directory")
        self.assertEqual(self.no_temp_files(self.tmp), [])

    def test_read_only_directory(self):
        if os.geteuid() == 0:
            self.skipTest("root ignores directory permissions")
        ro = self.path("ro")
        os.mkdir(ro)
        out = os.path.join(ro, "o.npy")
        self.assertExit(run("forward", "--seq", "4", "--dim", "4", "-o", out), OK)
        before = read(out)
        os.chmod(ro, 0o555)
        try:
            p = run("forward", "--seq", "8", "--dim", "4", "-o", out)
            self.assertExit(p, IO)
        finally:
            os.chmod(ro, 0o755)
        self.assertEqual(read(out), before)
        self.assertEqual(self.no_temp_files(ro), [])

    def test_failed_run_leaves_previous_output_intact(self):
        out = self.path("o.npy")
        self.assertExit(run("forward", "--seq", "4", "--dim", "4", "--seed", "7", "-o", out), OK)
        before = read(out)
        bad = self.path("bad.npy")
        write(bad, npy_with_header("(4, 4, 4)", b"\0" * 8))
        for args, code in ((["--q", bad, "--k", bad, "--v", bad], BAD_INPUT),
                           (["--seq", "4", "--dim", "4", "--block", "0"], USAGE),
                           (["--seq", "99999999999999999999", "--dim", "4"], USAGE),
                           (["--seq", "100000000000", "--dim", "4"], BAD_INPUT)):
            with self.subTest(args=args):
                self.assertExit(run("forward", "-o", out, *args), code)
                self.assertEqual(read(out), before)
                self.assertEqual(self.no_temp_files(self.tmp), [])


def run_fsize_limited(limit, *args):
    """Runs rvtemporal with RLIMIT_FSIZE = limit bytes and SIGXFSZ ignored: a write past the
    limit fails with EFBIG, as a write to a full disk fails with ENOSPC."""
    def limit_fsize():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=300,
                          preexec_fn=limit_fsize)


class TestDiskFull(CliTestCase):
    """Every writer (blob, .npy, report, SVG) meets a write that fails part-way: exit 4, one line
    naming the file, the previous file byte-identical, no temp file left."""
    LIMIT = 1024  # bytes: smaller than every output below

    def assertWriteFails(self, target, args, directory=None):
        before = read(target)
        p = run_fsize_limited(self.LIMIT, *args)
        self.assertExit(p, IO)
        self.assertOneLineError(p, target, "write failed", "File too large")
        self.assertEqual(read(target), before)
        self.assertEqual(self.no_temp_files(directory or os.path.dirname(target)), [])
        return p

    def test_blob_init_force(self):
        blob = self.path("m.rvne")
        self.assertExit(run("blob", "init", "--out", blob, "--seed", "1"), OK)
        self.assertGreater(os.path.getsize(blob), self.LIMIT)
        for dtype in ("f32", "f16"):
            with self.subTest(dtype=dtype):
                self.assertWriteFails(blob, ["blob", "init", "--out", blob, "--force", "--dtype", dtype])
        # Without the limit the same command replaces it.
        self.assertExit(run("blob", "init", "--out", blob, "--force"), OK)
        self.assertNotEqual(read(blob), b"")

    def test_forward_and_stream_out(self):
        out = self.path("o.npy")
        self.assertExit(run("forward", "--seq", "64", "--dim", "8", "--seed", "3", "-o", out), OK)
        self.assertGreater(os.path.getsize(out), self.LIMIT)
        self.assertWriteFails(out, ["forward", "--seq", "64", "--dim", "8", "-o", out])
        self.assertWriteFails(out, ["stream", "--seq", "64", "--dim", "8", "-o", out])
        blob = self.path("m.rvne")
        self.assertExit(run("blob", "init", "--out", blob), OK)
        logits = self.path("logits.npy")
        self.assertExit(run("stream", "--blob", blob, "--gen-frames", "200", "-o", logits, "--no-parity"), OK)
        self.assertGreater(os.path.getsize(logits), self.LIMIT)
        self.assertWriteFails(logits, ["stream", "--blob", blob, "--gen-frames", "100", "-o", logits, "--no-parity"])

    def test_out_report(self):
        rep = self.path("r.json")
        self.assertExit(run("forward", "--seq", "8", "--dim", "4", "--out-report", rep), OK)
        self.assertGreater(os.path.getsize(rep), self.LIMIT)
        p = self.assertWriteFails(rep, ["forward", "--seq", "16", "--dim", "4", "--out-report", rep])
        self.assertIn("edges per head", p.stdout)  # the run itself succeeded; only the report failed
        # A failed run's report is short enough to be written under the limit: the run's own code.
        p = run_fsize_limited(self.LIMIT, "forward", "--seq", "8", "--block", "0", "--out-report", rep)
        self.assertExit(p, USAGE)
        self.assertEqual(json.loads(read(rep))["exit_code"], USAGE)
        self.assertEqual(self.no_temp_files(self.tmp), [])

    def test_svg_outputs(self):
        plot = self.path("bench.svg")
        bench = ["bench", "--seq", "32,64", "--reps", "1", "--warmup", "0", "--threads", "1", "--decode-at", "none",
                 "--no-reference", "-q", "--plot", plot]
        self.assertExit(run(*bench), OK)
        self.assertGreater(os.path.getsize(plot), self.LIMIT)
        p = self.assertWriteFails(plot, bench + ["--json"])
        result = json.loads(p.stdout)["result"]  # the measurements stand; only the plot is missing
        self.assertEqual([row["seq"] for row in result["prefill"]], [32, 64])
        self.assertIsNone(result["plot"])
        plots = self.path("plots")
        self.assertExit(run("parity", "--suite", "realistic", "--seq", "48", "--plot-dir", plots), OK)
        before = {name: read(os.path.join(plots, name)) for name in os.listdir(plots)}
        self.assertEqual(len(before), 3)
        p = run_fsize_limited(self.LIMIT, "parity", "--suite", "realistic", "--seq", "64", "--plot-dir", plots, "--json")
        self.assertExit(p, IO)
        self.assertOneLineError(p, plots, ".svg", "write failed")
        self.assertEqual({name: read(os.path.join(plots, name)) for name in os.listdir(plots)}, before)
        suite = json.loads(p.stdout)["result"]["suites"][0]  # the suite's results stand
        self.assertEqual(len(suite["plot_errors"]), 3)
        self.assertGreater(len(suite["cases"]), 0)

    def test_full_tmpfs(self):
        # A real full file system, where the platform lets us mount one (root, no container ban).
        if os.geteuid() != 0 or shutil.which("mount") is None:
            self.skipTest("mounting a tmpfs needs root and mount(8)")
        mnt = tempfile.mkdtemp(prefix="rvt-tmpfs-")
        try:
            m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt], capture_output=True, text=True)
            if m.returncode != 0:
                self.skipTest(f"cannot mount a tmpfs here: {m.stderr.strip()}")
            try:
                blob = os.path.join(mnt, "m.rvne")
                self.assertExit(run("blob", "init", "--out", blob), OK)  # 41,244 bytes: room for one
                before = read(blob)
                p = run("blob", "init", "--out", blob, "--force", "--seed", "2")
                self.assertExit(p, IO)
                self.assertOneLineError(p, blob, "No space left on device")
                self.assertEqual(read(blob), before)
                self.assertEqual(self.no_temp_files(mnt), [])
                out = os.path.join(mnt, "o.npy")
                p = run("forward", "--seq", "1024", "--dim", "32", "-o", out)  # 512 KiB
                self.assertExit(p, IO)
                self.assertOneLineError(p, out, "No space left on device")
                self.assertEqual(sorted(os.listdir(mnt)), ["m.rvne"])
            finally:
                subprocess.run(["umount", mnt], check=True)
        finally:
            os.rmdir(mnt)

if __name__ == "__main__":
    main()
