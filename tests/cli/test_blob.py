"""CLI tests of `rvtemporal blob init | inspect | verify`: exact exit codes and JSON fields."""
import json
import os
import re
import resource
import subprocess
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rvt_cli import *  # noqa: E402,F401,F403
from rvt_cli import BIN  # noqa: E402

DEFAULT_BLOB = os.path.join(DATA, "blobs", "default.rvne")
DEFAULT_CRC = "0xdc807956"
DEFAULT_BYTES = 41244
DEFAULT_XXH3 = "7dfd4dd2b7a1928e"  # XXH3-64 of data/blobs/default.rvne
DEFAULT_SHAPE = dict(input_dim=16, q=4, kv=1, head_dim=32, layers=2, classes=4)
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def default_bytes():
    with open(DEFAULT_BLOB, "rb") as f:
        return f.read()


def seal(body):
    """Appends the CRC-32/IEEE of body (zlib.crc32 is the same function)."""
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def make_blob(payload, input_dim=16, q=4, kv=1, head_dim=32, layers=2, classes=4,
              flags=0, magic=0x52564E45, version=1, weights_len=None):
    """An RVNE v1 image with a correct CRC over whatever the header says."""
    wl = len(payload) if weights_len is None else weights_len
    header = struct.pack("<IHBBHHHHHHI", magic, version, flags, 0, input_dim, q, kv, head_dim,
                         layers, classes, wl)
    assert len(header) == 24
    return seal(header + payload)


def patch_u16(data, offset, value, reseal=True):
    """The file with one u16 header field replaced; the CRC recomputed unless told not to."""
    b = bytearray(data)
    struct.pack_into("<H", b, offset, value)
    return seal(bytes(b[:-4])) if reseal else bytes(b)


class BlobCase(CliTestCase):
    def write(self, name, data):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()


class TestBlobInit(BlobCase):
    def test_default_is_the_reference_blob(self):
        out = self.path("a.rvne")
        p, r = run_json("blob", "init", "--out", out)
        self.assertExit(p, OK)
        self.assertEnvelope(r, "blob init", 0)
        self.assertEqual(self.read(out), default_bytes())
        res = r["result"]
        self.assertEqual(res["path"], out)
        self.assertEqual(res["crc"], DEFAULT_CRC)
        self.assertEqual(res["file_bytes"], DEFAULT_BYTES)
        self.assertEqual(res["xxh3_file"], DEFAULT_XXH3)
        self.assertEqual(res["seed"], "c5110007deadbeef")
        h = res["header"]
        self.assertEqual(h["magic"], "0x52564e45")
        self.assertEqual((h["version"], h["flags"], h["dtype"], h["reserved"]), (1, 0, "f32", 0))
        self.assertEqual((h["input_dim"], h["n_q_heads"], h["n_kv_heads"], h["head_dim"],
                          h["n_layers"], h["n_classes"]), (16, 4, 1, 32, 2, 4))
        self.assertEqual(h["weights_len_bytes"], 41216)
        self.assertIsNone(r["error"])
        self.assertEqual(p.stderr, "")

    def test_text_output(self):
        out = self.path("a.rvne")
        p = run("blob", "init", "--out", out)
        self.assertExit(p, OK)
        self.assertIn(f"wrote {out} ({DEFAULT_BYTES} bytes, f32, crc {DEFAULT_CRC}, xxh3 {DEFAULT_XXH3})",
                      p.stdout)

    def test_refuses_to_overwrite_without_force(self):
        out = self.write("a.rvne", b"keep me")
        p = run("blob", "init", "--out", out)
        self.assertExit(p, IO)
        self.assertOneLineError(p, out, "--force")
        self.assertEqual(self.read(out), b"keep me")
        self.assertEqual(self.no_temp_files(self.tmp), [])
        p, r = run_json("blob", "init", "--out", out)
        self.assertExit(p, IO)
        self.assertEnvelope(r, "blob init", IO)
        self.assertIn("exists", r["error"]["message"])
        self.assertEqual(self.read(out), b"keep me")

    def test_two_inits_at_once_never_both_write(self):
        # The existence check and the rename were two steps: of two runs at once, both could
        # pass the check, and the second replaced the first's file and still said "wrote".
        out = self.path("race.rvne")
        for i in range(10):
            if os.path.exists(out):
                os.remove(out)
            procs = [subprocess.Popen([BIN, "blob", "init", "--out", out, "--seed", str(seed)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
            results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
            for p in procs:
                p.stdout.close()
                p.stderr.close()
            codes = sorted(code for code, _ in results)
            self.assertEqual(codes, [OK, IO], results)
            self.assertIn("exists (use --force to overwrite)", [err for code, err in results if code == IO][0])
        self.assertEqual(sorted(os.listdir(self.tmp)), ["race.rvne"])  # no temp file left

    def test_overwrites_with_force(self):
        out = self.write("a.rvne", b"old")
        p = run("blob", "init", "--out", out, "--force")
        self.assertExit(p, OK)
        self.assertEqual(self.read(out), default_bytes())
        p = run("blob", "init", "-o", out, "-f", "--seed", "1")
        self.assertExit(p, OK)
        self.assertNotEqual(self.read(out), default_bytes())
        self.assertEqual(self.no_temp_files(self.tmp), [])

    def test_seed_decimal_and_hex_agree(self):
        a, b, c, d = (self.path(n) for n in ("a", "b", "c", "d"))
        self.assertExit(run("blob", "init", "--out", a, "--seed", "42"), OK)
        self.assertExit(run("blob", "init", "--out", b, "--seed", "0x2a"), OK)
        self.assertEqual(self.read(a), self.read(b))
        self.assertNotEqual(self.read(a), default_bytes())
        # The default seed, spelled in decimal and in upper-case hex.
        self.assertExit(run("blob", "init", "--out", c, "--seed", str(0xC5110007DEADBEEF)), OK)
        self.assertExit(run("blob", "init", "--out", d, "--seed", "0XC5110007DEADBEEF"), OK)
        self.assertEqual(self.read(c), default_bytes())
        self.assertEqual(self.read(d), default_bytes())
        p, r = run_json("blob", "init", "--out", self.path("e"), "--seed", "18446744073709551615")
        self.assertExit(p, OK)
        self.assertEqual(r["result"]["seed"], "ffffffffffffffff")

    def test_bad_seed_is_usage(self):
        for seed in ("abc", "-1", "", "0x", "0xg1", "1.5", "18446744073709551616"):
            with self.subTest(seed=seed):
                out = self.path("s.rvne")
                p = run("blob", "init", "--out", out, "--seed", seed)
                self.assertExit(p, USAGE)
                self.assertFalse(os.path.exists(out))
        p = run("blob", "init", "--out", self.path("s.rvne"), "--seed", "abc")
        self.assertOneLineError(p, "--seed", "abc")

    def test_f16(self):
        out = self.path("h.rvne")
        p, r = run_json("blob", "init", "--out", out, "--dtype", "f16")
        self.assertExit(p, OK)
        data = self.read(out)
        self.assertEqual(len(data), 28 + 2 * 10304)
        self.assertEqual(r["result"]["file_bytes"], 28 + 2 * 10304)
        self.assertEqual(r["result"]["header"]["dtype"], "f16")
        self.assertEqual(r["result"]["header"]["flags"], 1)
        self.assertEqual(data[6], 1)
        self.assertEqual(struct.unpack_from("<I", data, 20)[0], 2 * 10304)
        self.assertEqual(struct.unpack_from("<I", data, len(data) - 4)[0], zlib.crc32(data[:-4]))
        # The halves are the reference f32 values rounded (numpy-free: struct 'e' is IEEE half).
        ref = default_bytes()
        for i in range(0, 10304, 97):
            f32 = struct.unpack_from("<f", ref, 24 + 4 * i)[0]
            f16 = struct.unpack_from("<e", data, 24 + 2 * i)[0]
            self.assertEqual(f16, struct.unpack("<e", struct.pack("<e", f32))[0], f"element {i}")
        p, r = run_json("blob", "inspect", out)
        self.assertExit(p, OK)
        self.assertTrue(r["result"]["loadable"]["ok"])
        self.assertEqual(r["result"]["element_count"], 10304)

    def test_bad_dtype_is_usage(self):
        out = self.path("x.rvne")
        p = run("blob", "init", "--out", out, "--dtype", "bogus")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--dtype", "bogus")
        self.assertFalse(os.path.exists(out))

    def test_gqa_shape_is_usage_and_writes_nothing(self):
        out = self.path("x.rvne")
        p = run("blob", "init", "--out", out, "--q-heads", "3", "--kv-heads", "2")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "GQA")
        self.assertFalse(os.path.exists(out))
        self.assertEqual(os.listdir(self.tmp), [])

    def test_other_bad_shapes_are_usage(self):
        out = self.path("x.rvne")
        for args in (["--q-heads", "70000"], ["--head-dim", "-1"], ["--layers", "0"],
                     ["--classes", "1"], ["--input-dim", "0"], ["--kv-heads", "0"],
                     ["--input-dim", "abc"],
                     # fits u16 but the payload does not fit the u32 weights_len field
                     ["--input-dim", "1024", "--q-heads", "1024", "--head-dim", "1024"],
                     # 4 * element count wraps u64 to 262144 bytes: still refused, promptly
                     ["--input-dim", "32768", "--q-heads", "32768", "--kv-heads", "32768",
                      "--head-dim", "32768", "--layers", "32768", "--classes", "2"]):
            with self.subTest(args=args):
                p = run("blob", "init", "--out", out, *args)
                self.assertExit(p, USAGE)
                self.assertFalse(os.path.exists(out))
        self.assertEqual(os.listdir(self.tmp), [])
        # The shape fields' messages name the option and why, not CLI11's "Could not convert".
        for args, words in ((["--q-heads", "70000"], ("--q-heads", "'70000' is more than 65535", "16-bit")),
                            (["--layers", "-1"], ("--layers", "not a non-negative integer")),
                            (["--input-dim", "99999999999999999999"], ("--input-dim", "too large"))):
            with self.subTest(args=args):
                p = run("blob", "init", "--out", out, *args)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, *words)

    def test_custom_shape(self):
        out = self.path("g.rvne")
        p, r = run_json("blob", "init", "--out", out, "--input-dim", "8", "--q-heads", "6",
                        "--kv-heads", "2", "--head-dim", "4", "--layers", "3", "--classes", "5")
        self.assertExit(p, OK)
        n = 3 * 2 * 8 * 4 * (6 + 2) + 8 * 5
        self.assertEqual(r["result"]["file_bytes"], 28 + 4 * n)
        p, r = run_json("blob", "inspect", out)
        self.assertExit(p, OK)
        self.assertEqual(len(r["result"]["tensors"]), 13)
        self.assertTrue(r["result"]["loadable"]["ok"])

    def test_missing_directory_is_io(self):
        out = os.path.join(self.tmp, "no", "such", "dir", "x.rvne")
        p = run("blob", "init", "--out", out)
        self.assertExit(p, IO)
        self.assertOneLineError(p, out)
        self.assertEqual(os.listdir(self.tmp), [])
        self.assertEqual(self.no_temp_files(self.tmp), [])

    def test_out_is_a_directory_is_io(self):
        os.mkdir(self.path("d"))
        p = run("blob", "init", "--out", self.path("d"), "--force")
        self.assertExit(p, IO)
        self.assertOneLineError(p, self.path("d"), "directory")
        self.assertEqual(os.listdir(self.tmp), ["d"])


class TestBlobInspect(BlobCase):
    def test_text(self):
        p = run("blob", "inspect", DEFAULT_BLOB)
        self.assertExit(p, OK)
        for fragment in (f"{DEFAULT_BLOB} ({DEFAULT_BYTES} bytes)", "0x52564e45", "f32 (flags 0)",
                         "input_dim 16, q_heads 4, kv_heads 1, head_dim 32, layers 2, classes 4",
                         "41216 bytes, 10304 elements (layout needs 10304)",
                         f"stored {DEFAULT_CRC}, computed {DEFAULT_CRC}", DEFAULT_XXH3,
                         "layer0.wq", "layer1.wo", "classifier"):
            self.assertIn(fragment, p.stdout)
        self.assertRegex(p.stdout, r"loadable\s+yes")
        self.assertEqual(p.stderr, "")

    def test_json(self):
        p, r = run_json("blob", "inspect", DEFAULT_BLOB)
        self.assertExit(p, OK)
        self.assertEnvelope(r, "blob inspect", 0)
        res = r["result"]
        self.assertEqual(res["path"], DEFAULT_BLOB)
        self.assertEqual(res["file_bytes"], DEFAULT_BYTES)
        h = res["header"]
        self.assertEqual((h["magic"], h["version"], h["dtype"], h["input_dim"], h["n_q_heads"],
                          h["n_kv_heads"], h["head_dim"], h["n_layers"], h["n_classes"],
                          h["weights_len_bytes"]),
                         ("0x52564e45", 1, "f32", 16, 4, 1, 32, 2, 4, 41216))
        self.assertEqual(res["payload_bytes"], 41216)
        self.assertEqual(res["element_count"], 10304)
        self.assertEqual(res["layout_element_count"], 10304)
        self.assertEqual(res["crc_stored"], DEFAULT_CRC)
        self.assertEqual(res["crc_computed"], res["crc_stored"])
        self.assertRegex(res["xxh3_payload"], HEX16)
        self.assertRegex(res["xxh3_file"], HEX16)
        self.assertEqual(res["xxh3_file"], DEFAULT_XXH3)
        self.assertNotEqual(res["xxh3_payload"], res["xxh3_file"])
        self.assertEqual(res["loadable"], {"ok": True, "check": "ok", "message": ""})
        tensors = res["tensors"]
        self.assertEqual(len(tensors), 9)
        want = [(0, "wq", [16, 128], 0), (0, "wk", [16, 32], 2048), (0, "wv", [16, 32], 2560),
                (0, "wo", [128, 16], 3072), (1, "wq", [16, 128], 5120), (1, "wk", [16, 32], 7168),
                (1, "wv", [16, 32], 7680), (1, "wo", [128, 16], 8192),
                (None, "classifier", [16, 4], 10240)]
        ref = default_bytes()
        for t, (layer, name, shape, offset) in zip(tensors, want):
            self.assertEqual((t["layer"], t["name"], t["shape"], t["offset_bytes"]),
                             (layer, name, shape, 24 + 4 * offset))
            s = t["stats"]
            count = shape[0] * shape[1]
            self.assertEqual(s["count"], count)
            self.assertEqual((s["nan_count"], s["inf_count"]), (0, 0))
            values = struct.unpack_from(f"<{count}f", ref, 24 + 4 * offset)
            self.assertAlmostEqual(s["min"], min(values), places=12)
            self.assertAlmostEqual(s["max"], max(values), places=12)
            self.assertAlmostEqual(s["mean"], sum(values) / count, places=9)
            self.assertGreaterEqual(s["min"], -0.1)
            self.assertLessEqual(s["max"], 0.1)

    def test_layout_mismatch_is_a_valid_container_not_loadable(self):
        path = self.write("short.rvne", make_blob(bytes(4 * 10303)))
        p, r = run_json("blob", "inspect", path)
        self.assertExit(p, OK)
        res = r["result"]
        self.assertEqual(res["element_count"], 10303)
        self.assertEqual(res["layout_element_count"], 10304)
        self.assertFalse(res["loadable"]["ok"])
        self.assertEqual(res["loadable"]["check"], "layout_mismatch")
        self.assertIn("10303", res["loadable"]["message"])
        self.assertEqual(len(res["tensors"]), 9)
        self.assertIsNone(res["tensors"][8]["stats"])  # the classifier runs past the payload
        self.assertEqual(res["tensors"][7]["stats"]["count"], 2048)
        p = run("blob", "inspect", path)
        self.assertExit(p, OK)
        self.assertRegex(p.stdout, r"loadable\s+no: ")
        self.assertIn("(missing)", p.stdout)
        # verify fails it with the same check
        p, r = run_json("blob", "verify", path)
        self.assertExit(p, CHECK_FAILED)
        self.assertEqual(r["result"]["files"][0]["check"], "layout_mismatch")

    def test_extreme_header_shape_is_reported_not_crashed(self):
        # Every dim 65535 (q % kv == 0) over a 16-byte payload: each tensor runs far past it.
        path = self.write("max.rvne", make_blob(bytes(16), input_dim=65535, q=65535, kv=65535,
                                                head_dim=65535, layers=1, classes=65535))
        p, r = run_json("blob", "inspect", path)
        self.assertExit(p, OK)
        self.assertEqual(r["result"]["loadable"]["check"], "layout_mismatch")
        self.assertTrue(all(t["stats"] is None for t in r["result"]["tensors"]))
        # With 65535 layers the layout needs more than 2^64 elements (the count saturates).
        path = self.write("max2.rvne", make_blob(bytes(16), input_dim=65535, q=65535, kv=65535,
                                                 head_dim=65535, layers=65535, classes=65535))
        p, r = run_json("blob", "verify", path)
        self.assertExit(p, CHECK_FAILED)
        self.assertEqual(r["result"]["files"][0]["check"], "layout_mismatch")
        self.assertIn("18446744073709551615", r["result"]["files"][0]["message"])
        # inspect lists the first slot past the payload and counts the other 262,140 (their
        # offsets saturate at 2^64 - 1, never wrap); each shape in full (65535 x 4294836225).
        p, r = run_json("blob", "inspect", path)
        self.assertExit(p, OK)
        res = r["result"]
        self.assertEqual(len(res["tensors"]), 1)
        self.assertEqual(res["tensors_not_listed"], 65535 * 4)
        self.assertEqual(res["tensors"][0]["shape"], [65535, 65535 * 65535])
        p = run("blob", "inspect", path)
        self.assertExit(p, OK)
        self.assertIn("65535x4294836225", p.stdout)
        self.assertIn("262140 more slots past the payload", p.stdout)
        self.assertLess(len(p.stdout), 4000)

    def test_non_finite_weights_are_counted(self):
        ref = bytearray(default_bytes())
        struct.pack_into("<f", ref, 24 + 4 * 10, float("nan"))
        struct.pack_into("<f", ref, 24 + 4 * 10300, float("inf"))
        path = self.write("nan.rvne", seal(bytes(ref[:-4])))
        p, r = run_json("blob", "inspect", path)
        self.assertExit(p, OK)
        res = r["result"]
        self.assertFalse(res["loadable"]["ok"])
        self.assertEqual(res["loadable"]["check"], "non_finite_weights")
        self.assertEqual(res["tensors"][0]["stats"]["nan_count"], 1)
        self.assertEqual(res["tensors"][8]["stats"]["inf_count"], 1)

    def test_tensor_with_no_finite_value_is_inspected(self):
        # Every classifier weight NaN or inf: its min/max/mean/std are null, "-" in the text.
        ref = bytearray(default_bytes())
        for i in range(64):
            struct.pack_into("<f", ref, 24 + 4 * (10304 - 64 + i), float("nan") if i % 2 else float("-inf"))
        path = self.write("nan_cls.rvne", seal(bytes(ref[:-4])))
        p, r = run_json("blob", "inspect", path)
        self.assertExit(p, OK)
        s = r["result"]["tensors"][8]["stats"]
        self.assertEqual((s["count"], s["nan_count"], s["inf_count"]), (64, 32, 32))
        self.assertIsNone(s["min"])
        self.assertIsNone(s["std"])
        p = run("blob", "inspect", path)
        self.assertExit(p, OK)
        self.assertRegex(p.stdout, r"classifier\s+16x4\s+40984\s+-\s+-\s+-\s+-\s+64")

    def test_corrupt_file_is_bad_input(self):
        data = bytearray(default_bytes())
        data[24 + 500] ^= 0x04
        path = self.write("bad.rvne", bytes(data))
        p = run("blob", "inspect", path)
        self.assertExit(p, BAD_INPUT)
        self.assertOneLineError(p, path, "crc mismatch", DEFAULT_CRC)
        self.assertEqual(p.stdout, "")
        p, r = run_json("blob", "inspect", path)
        self.assertExit(p, BAD_INPUT)
        self.assertEnvelope(r, "blob inspect", BAD_INPUT)
        self.assertIn(path, r["error"]["message"])
        for data, fragment in ((b"", "too short"), (b"RVNE" * 8, "bad magic"),
                               (patch_u16(default_bytes(), 12, 3), "GQA")):
            with self.subTest(fragment=fragment):
                path = self.write("c.rvne", data)
                p = run("blob", "inspect", path)
                self.assertExit(p, BAD_INPUT)
                self.assertOneLineError(p, path, fragment)

    def test_missing_file_and_directory_are_io(self):
        missing = self.path("nope.rvne")
        p = run("blob", "inspect", missing)
        self.assertExit(p, IO)
        self.assertOneLineError(p, missing)
        p = run("blob", "inspect", self.tmp)
        self.assertExit(p, IO)
        self.assertOneLineError(p, self.tmp, "directory")

    def test_out_report_writes_the_same_json(self):
        report = self.path("r.json")
        p, r = run_json("blob", "inspect", DEFAULT_BLOB, "--out-report", report)
        self.assertExit(p, OK)
        with open(report) as f:
            written = json.load(f)
        self.assertEqual(written, r)
        # Without --json: text on stdout, the JSON report in the file.
        report2 = self.path("r2.json")
        p = run("--out-report", report2, "blob", "inspect", DEFAULT_BLOB)
        self.assertExit(p, OK)
        self.assertIn("layer0.wq", p.stdout)
        with open(report2) as f:
            written = json.load(f)
        self.assertEnvelope(written, "blob inspect", 0)
        self.assertEqual(written["result"]["crc_stored"], DEFAULT_CRC)
        self.assertEqual(self.no_temp_files(self.tmp), [])

    def test_out_report_for_a_failure(self):
        report = self.path("r.json")
        p = run("blob", "inspect", self.path("nope"), "--out-report", report)
        self.assertExit(p, IO)
        with open(report) as f:
            written = json.load(f)
        self.assertEnvelope(written, "blob inspect", IO)
        self.assertIn("nope", written["error"]["message"])


class TestBlobVerify(BlobCase):
    def copies(self, n):
        return [self.write(f"b{i}.rvne", default_bytes()) for i in range(n)]

    def test_all_valid(self):
        files = self.copies(3)
        p, r = run_json("blob", "verify", *files)
        self.assertExit(p, OK)
        self.assertEnvelope(r, "blob verify", 0)
        res = r["result"]
        self.assertEqual((res["files_total"], res["files_valid"]), (3, 3))
        for f, path in zip(res["files"], files):
            self.assertEqual((f["path"], f["valid"], f["check"], f["exit_code"]), (path, True, "ok", 0))
            self.assertEqual(f["detail"]["xxh3_file"], DEFAULT_XXH3)
            self.assertEqual(f["detail"]["crc"], DEFAULT_CRC)
            self.assertEqual(f["detail"]["file_bytes"], DEFAULT_BYTES)
        p = run("blob", "verify", *files)
        self.assertExit(p, OK)
        self.assertEqual(p.stdout.count("ok "), 3)
        self.assertEqual(p.stderr, "")

    def test_one_corrupted(self):
        good, bad, good2 = self.copies(3)
        data = bytearray(default_bytes())
        data[24 + 4000] ^= 0x01
        with open(bad, "wb") as f:
            f.write(data)
        p, r = run_json("blob", "verify", good, bad, good2)
        self.assertExit(p, CHECK_FAILED)
        self.assertEnvelope(r, "blob verify", CHECK_FAILED)
        res = r["result"]
        self.assertEqual((res["files_total"], res["files_valid"]), (3, 2))
        verdicts = [(f["path"], f["valid"], f["check"], f["exit_code"]) for f in res["files"]]
        self.assertEqual(verdicts, [(good, True, "ok", 0), (bad, False, "crc_mismatch", 1),
                                    (good2, True, "ok", 0)])
        computed = "0x%08x" % zlib.crc32(bytes(data[:-4]))
        self.assertIn(f"stored {DEFAULT_CRC}, computed {computed}", res["files"][1]["message"])
        self.assertIn("1 of 3", r["error"]["message"])
        p = run("blob", "verify", good, bad, good2)
        self.assertExit(p, CHECK_FAILED)
        self.assertOneLineError(p, "1 of 3")
        self.assertIn("[crc_mismatch]", p.stdout)

    def test_missing_file_among_them_is_io(self):
        good, bad = self.copies(2)
        with open(bad, "r+b") as f:
            f.seek(100)
            f.write(b"\xff")
        missing = self.path("missing.rvne")
        p, r = run_json("blob", "verify", good, missing, bad)
        self.assertExit(p, IO)
        self.assertEnvelope(r, "blob verify", IO)
        checks = [(f["check"], f["exit_code"]) for f in r["result"]["files"]]
        self.assertEqual(checks, [("ok", 0), ("io", 4), ("crc_mismatch", 1)])
        self.assertIn(missing, r["result"]["files"][1]["message"])
        p, r = run_json("blob", "verify", good, self.tmp)
        self.assertExit(p, IO)
        self.assertEqual(r["result"]["files"][1]["check"], "io")

    def test_expect_xxh3(self):
        (path,) = self.copies(1)
        for digest in (DEFAULT_XXH3, "0x" + DEFAULT_XXH3, DEFAULT_XXH3.upper()):
            with self.subTest(digest=digest):
                p, r = run_json("blob", "verify", path, "--expect-xxh3", digest)
                self.assertExit(p, OK)
        wrong = "%016x" % (int(DEFAULT_XXH3, 16) ^ 1)
        p, r = run_json("blob", "verify", path, "--expect-xxh3", wrong)
        self.assertExit(p, CHECK_FAILED)
        f = r["result"]["files"][0]
        self.assertEqual((f["valid"], f["check"], f["exit_code"]), (False, "digest_mismatch", 1))
        self.assertIn(DEFAULT_XXH3, f["message"])
        self.assertIn(wrong, f["message"])
        p = run("blob", "verify", path, "--expect-xxh3", "not-hex")
        self.assertExit(p, USAGE)
        self.assertOneLineError(p, "--expect-xxh3")
        # A digest pasted a digit short (or long) is a usage error, not a digest mismatch
        # blamed on the file: it used to be zero-extended and compared.
        for typed in (DEFAULT_XXH3[1:], "0x" + DEFAULT_XXH3[:8], DEFAULT_XXH3 + "0"):
            with self.subTest(typed=typed):
                p, r = run_json("blob", "verify", path, "--expect-xxh3", typed)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, "--expect-xxh3")
                self.assertIn("an XXH3-64 has 16", p.stderr)
                self.assertFalse(r["ok"])

    def verify_one(self, data, name="x.rvne"):
        path = self.write(name, data)
        p, r = run_json("blob", "verify", path)
        self.assertExit(p, CHECK_FAILED)
        f = r["result"]["files"][0]
        self.assertFalse(f["valid"])
        self.assertEqual(f["exit_code"], 1)
        self.assertIn(path, f["message"])
        return f

    def test_each_check_name(self):
        ref = default_bytes()
        cases = [
            (b"", "too_short"),
            (ref[:27], "too_short"),
            (b"X" + ref[1:], "bad_magic"),
            (patch_u16(ref, 4, 2), "unsupported_version"),
            (ref[:-1], "length_mismatch"),
            (ref + b"\0", "length_mismatch"),
            (ref[:-4][:-100] + ref[-4:], "length_mismatch"),
            (patch_u16(ref, 8, 0, reseal=False), "crc_mismatch"),
            (patch_u16(ref, 8, 0), "zero_dim"),
            (patch_u16(ref, 10, 0), "zero_dim"),
            (patch_u16(ref, 12, 0), "zero_dim"),
            (patch_u16(ref, 14, 0), "zero_dim"),
            (patch_u16(patch_u16(ref, 10, 3), 12, 2), "gqa_divisibility"),
            (patch_u16(ref, 16, 0), "layers_or_classes"),
            (patch_u16(ref, 18, 1), "layers_or_classes"),
            (make_blob(bytes(7), flags=1), "element_size"),
            (make_blob(bytes(6)), "element_size"),
            (make_blob(bytes(4 * 10305)), "layout_mismatch"),
            (make_blob(b"\0\0\xc0\x7f" + bytes(4 * 10303)), "non_finite_weights"),
        ]
        for i, (data, check) in enumerate(cases):
            with self.subTest(case=i, check=check):
                f = self.verify_one(data, f"case{i}.rvne")
                self.assertEqual(f["check"], check, f["message"])

    def test_empty_truncated_and_gqa(self):
        f = self.verify_one(b"")
        self.assertEqual(f["check"], "too_short")
        self.assertEqual(f["detail"]["file_bytes"], 0)
        f = self.verify_one(default_bytes()[:-10])
        self.assertEqual(f["check"], "length_mismatch")
        self.assertIn("41244", f["message"])
        f = self.verify_one(patch_u16(patch_u16(default_bytes(), 10, 3), 12, 2))
        self.assertEqual(f["check"], "gqa_divisibility")
        self.assertIn("GQA", f["message"])

    def test_huge_weights_len_is_rejected_without_allocating(self):
        b = bytearray(default_bytes())
        struct.pack_into("<I", b, 20, 0xFFFFFFFF)
        path = self.write("huge.rvne", seal(bytes(b[:-4])))
        limit = 1 << 30  # 1 GiB of address space: a 4 GiB allocation would fail (exit 3)

        def cap():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        # Only cap when the binary runs under the cap at all (sanitizer builds reserve more).
        capped = subprocess.run([BIN, "--version"], capture_output=True, preexec_fn=cap).returncode == 0
        p = subprocess.run([BIN, "blob", "verify", path, "--json"], capture_output=True, text=True,
                           preexec_fn=cap if capped else None, timeout=60)
        self.assertExit(p, CHECK_FAILED)
        f = json.loads(p.stdout)["result"]["files"][0]
        self.assertEqual(f["check"], "length_mismatch")
        self.assertIn("4294967295", f["message"])

    def test_a_file_longer_than_any_blob_is_judged_by_its_header(self):
        # 8 GiB (sparse), past 28 + 2^32 - 1 bytes: no blob is that long, so the header decides
        # and the file is never read whole (once verify read 40 GB to say "bad magic").
        limit = 1 << 30

        def cap():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        capped = subprocess.run([BIN, "--version"], capture_output=True, preexec_fn=cap).returncode == 0
        zeros = self.write("zeros.bin", b"")
        os.truncate(zeros, 8 << 30)
        valid_header = self.write("long.rvne", default_bytes())
        os.truncate(valid_header, 8 << 30)
        for path, check in ((zeros, "bad_magic"), (valid_header, "length_mismatch")):
            with self.subTest(check=check):
                p = subprocess.run([BIN, "blob", "verify", path, "--json"], capture_output=True, text=True,
                                   preexec_fn=cap if capped else None, timeout=60)
                self.assertExit(p, CHECK_FAILED)
                f = json.loads(p.stdout)["result"]["files"][0]
                self.assertEqual((f["check"], f["detail"]), (check, {"file_bytes": 8 << 30, "xxh3_file": None}))
                for args in (["blob", "inspect", path], ["forward", "--blob", path, "--gen-frames", "4"]):
                    p = subprocess.run([BIN, *args], capture_output=True, text=True,
                                       preexec_fn=cap if capped else None, timeout=60)
                    self.assertExit(p, BAD_INPUT)
                    self.assertOneLineError(p, path + ": " + ("bad magic" if check == "bad_magic" else "length mismatch"))


class TestUsage(BlobCase):
    def test_no_command(self):
        for args in ([], ["blob"], ["blob", "inspect"], ["blob", "verify"], ["blob", "init"]):
            with self.subTest(args=args):
                p = run(*args)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, "usage error")
                self.assertEqual(p.stdout, "")

    def test_unknown_option_or_command(self):
        for args in (["--bogus", "blob", "inspect", DEFAULT_BLOB],
                     ["blob", "inspect", DEFAULT_BLOB, "--bogus"],
                     ["blob", "init", "--out", self.path("x"), "--bogus"],
                     ["blob", "frobnicate"],
                     ["blob", "verify", DEFAULT_BLOB, "--expect-xxh3"]):
            with self.subTest(args=args):
                p = run(*args)
                self.assertExit(p, USAGE)
                self.assertOneLineError(p, "usage error")
        self.assertFalse(os.path.exists(self.path("x")))

    def test_help_is_ok(self):
        p = run("blob", "--help")
        self.assertExit(p, OK)
        for sub in ("init", "inspect", "verify"):
            self.assertIn(sub, p.stdout)


if __name__ == "__main__":
    main()
