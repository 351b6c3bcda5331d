"""Runs scripts/crosscheck_numpy.py: rvtemporal's dense attention and parity metrics against NumPy
(and PyTorch when installed), on generated inputs and on .npy files, and proves the check can fail."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rvt_cli import *  # noqa: E402,F401,F403
from rvt_cli import BIN  # noqa: E402

import numpy as np  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "crosscheck_numpy.py")


def crosscheck(*args):
    return subprocess.run([sys.executable, SCRIPT, "--bin", BIN, *map(str, args)], capture_output=True, text=True,
                          timeout=600)


class TestCrosscheck(CliTestCase):
    def assertAgrees(self, p):
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("crosscheck: all checks agree", p.stdout)
        self.assertNotIn("FAIL", p.stdout)
        for line in ("-- dense attention: rvtemporal vs numpy (float64)",
                     "-- parity metrics (sparse vs dense): rvtemporal vs numpy on the same outputs",
                     "ok    worst element: "):
            self.assertIn(line, p.stdout)
        try:
            import torch  # noqa: F401
            self.assertIn("scaled_dot_product_attention", p.stdout)
        except ImportError:
            self.assertIn("skip  torch:", p.stdout)

    def test_generated_inputs_gqa_causal(self):
        self.assertAgrees(crosscheck("--seq", 150, "--q-heads", 6, "--kv-heads", 2, "--dim", 16))

    def test_npy_files_noncausal(self):
        rng = np.random.default_rng(7)
        paths = []
        for name, heads in (("q", 4), ("k", 1), ("v", 1)):
            path = self.path(f"{name}.npy")
            np.save(path, (rng.standard_normal((97, heads, 24)) * 0.7).astype(np.float32))
            paths.append(path)
        p = crosscheck("--q", paths[0], "--k", paths[1], "--v", paths[2], "--no-causal", "--window", 8, "--block", 8)
        self.assertAgrees(p)
        self.assertIn("inputs: files, Q (97, 4, 24), K (97, 1, 24)", p.stdout)

    def test_a_disagreement_fails(self):
        p = crosscheck("--seq", 64, "--perturb", 1e-3)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("FAIL  max_abs:", p.stdout)
        self.assertIn("check(s) FAILED", p.stdout)

    def test_usage(self):
        p = crosscheck("--q", self.path("q.npy"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("must be given together", p.stderr)
        p = crosscheck("--q-heads", 3, "--kv-heads", 2)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    main()
