"""Hostile inputs (issue 7): huge or overflowing header sizes, N = 0 / 1, window/block far
larger than N, globals out of range, bad or absurd option values, outputs that cannot be
written. Exact exit codes and messages; a failing run leaves the previous output intact.
"""
import os
import struct
import sys
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
    def test_bad_numbers_are_usage_errors(self):
        cases = [
            (["--seq", "1e3"], "--seq"),
            (["--seq", "abc"], "--seq"),
            (["--threads", "-1"], "--threads"),
            (["--block", "0"], "block_size must be > 0"),
            (["--seed", "0x"], "--seed"),
            (["--seed", "18446744073709551616"], "does not fit in 64 bits"),
            (["--globals", "1,,2"], "--globals"),
            (["--globals", "12345678901234567890123"], "--globals"),
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

    def test_huge_seq_is_refused_before_allocating(self):
        p = run("forward", "--dim", "4", "--seq", "100000000000")
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p, "too large")


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


if __name__ == "__main__":
    main()
