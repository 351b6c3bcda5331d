#!/usr/bin/python3
"""Cross-check rvtemporal's attention and parity metrics against NumPy (and PyTorch if present).

Given Q/K/V .npy files (or generating them with a seeded NumPy RNG), this script
  1. runs `rvtemporal forward --backend dense` and `--backend sparse` on them,
  2. runs `rvtemporal parity --suite realistic` on them (sparse vs dense metrics),
  3. computes dense attention in float64 with NumPy and checks rvtemporal's dense output,
  4. recomputes every parity metric (max_abs, mean_abs, rmse, rel_l1, nmse, cosine, the
     worst element, per-head max_abs) in NumPy from the same outputs and checks they agree,
  5. recomputes the metrics against NumPy's own dense result (so the numbers describe the
     truth, not only rvtemporal's dense kernel),
  6. if `import torch` works, checks torch.nn.functional.scaled_dot_product_attention too;
     otherwise prints a skip line.
Exit 0 when everything agrees, 1 when something disagrees beyond tolerance (or rvtemporal
fails), 2 for usage errors. `--perturb EPS` shifts NumPy's reference by EPS to show the
check can fail.

Run it with the Python that has NumPy (Debian: /usr/bin/python3).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def fail_usage(msg):
    print(f"crosscheck: usage error: {msg}", file=sys.stderr)
    sys.exit(2)


def run_rvt(binary, args):
    p = subprocess.run([binary, *args, "--json"], capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(p.stdout)
    except json.JSONDecodeError:
        report = None
    return p, report


def dense_attention_f64(q, k, v, causal):
    """Dense softmax attention from the definition, float64, GQA by contiguous groups."""
    seq, hq, dim = q.shape
    hk = k.shape[1]
    group = hq // hk
    q64, k64, v64 = (x.astype(np.float64) for x in (q, k, v))
    kr = np.repeat(k64, group, axis=1)  # [seq][hq][dim]: query head h reads kv head h // group
    vr = np.repeat(v64, group, axis=1)
    scores = np.einsum("ihd,jhd->hij", q64, kr) / np.sqrt(dim)  # [hq][i][j]
    if causal:
        mask = np.triu(np.ones((seq, seq), dtype=bool), k=1)
        scores = np.where(mask[None, :, :], -np.inf, scores)
    scores -= scores.max(axis=2, keepdims=True)
    w = np.exp(scores)
    w /= w.sum(axis=2, keepdims=True)
    return np.einsum("hij,jhd->ihd", w, vr)


def metrics(got, want):
    """The parity metrics, as docs/parity.md defines them, in float64."""
    g = got.astype(np.float64).ravel()
    w = want.astype(np.float64).ravel()
    e = g - w
    ae = np.abs(e)
    worst = int(np.argmax(ae))  # the first maximum, as rvtemporal picks it
    seq, heads, dim = got.shape
    per_head = [float(np.abs(got[:, h, :].astype(np.float64) - want[:, h, :]).max()) for h in range(heads)]
    return {
        "max_abs": float(ae.max()),
        "mean_abs": float(ae.mean()),
        "rmse": float(np.sqrt((e * e).mean())),
        "rel_l1": float(ae.sum() / np.abs(w).sum()),
        "nmse": float((e * e).sum() / (w * w).sum()),
        "cosine": float(g @ w / (np.linalg.norm(g) * np.linalg.norm(w))),
        "worst": {"pos": worst // (heads * dim), "head": (worst // dim) % heads, "dim": worst % dim,
                  "got": float(g[worst]), "want": float(w[worst])},
        "per_head_max_abs": per_head,
    }


class Checker:
    def __init__(self):
        self.failures = 0

    def close(self, what, a, b, rel, abs_tol=0.0):
        ok = abs(a - b) <= max(abs_tol, rel * max(abs(a), abs(b)))
        self.report(ok, f"{what}: rvtemporal {a:.9g} numpy {b:.9g} (rel tol {rel:g})")

    def below(self, what, value, tol):
        self.report(value <= tol, f"{what}: {value:.3g} (tol {tol:g})")

    def report(self, ok, text):
        print(("ok    " if ok else "FAIL  ") + text)
        if not ok:
            self.failures += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("RVT_BIN", "build/apps/rvtemporal"), help="rvtemporal binary")
    ap.add_argument("--q")
    ap.add_argument("--k")
    ap.add_argument("--v")
    ap.add_argument("--seq", type=int, default=200)
    ap.add_argument("--q-heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--block", type=int, default=16)
    ap.add_argument("--no-causal", action="store_true")
    ap.add_argument("--tol-dense", type=float, default=1e-5, help="max |rvtemporal dense - numpy dense|")
    ap.add_argument("--tol-metric", type=float, default=1e-9, help="relative tolerance of metric agreement")
    ap.add_argument("--perturb", type=float, default=0.0, help="shift numpy's reference by this (self-test)")
    a = ap.parse_args()

    files = [a.q, a.k, a.v]
    if any(files) and not all(files):
        fail_usage("--q, --k and --v must be given together")
    if a.seq < 1 or a.q_heads < 1 or a.kv_heads < 1 or a.dim < 1 or a.q_heads % a.kv_heads:
        fail_usage("need seq, heads, dim >= 1 and q_heads divisible by kv_heads")
    if not os.path.exists(a.bin):
        fail_usage(f"rvtemporal binary not found: {a.bin} (set --bin or RVT_BIN)")
    causal = not a.no_causal
    check = Checker()

    with tempfile.TemporaryDirectory() as tmp:
        if all(files):
            q, k, v = (np.load(f) for f in files)
            qp, kp, vp = files
            source = "files"
        else:
            rng = np.random.default_rng(a.seed)
            q = rng.standard_normal((a.seq, a.q_heads, a.dim)).astype(np.float32)
            k = rng.standard_normal((a.seq, a.kv_heads, a.dim)).astype(np.float32)
            v = rng.standard_normal((a.seq, a.kv_heads, a.dim)).astype(np.float32)
            qp, kp, vp = (os.path.join(tmp, f"{n}.npy") for n in "qkv")
            for path, x in ((qp, q), (kp, k), (vp, v)):
                np.save(path, x)
            source = f"numpy default_rng({a.seed})"
        print(f"inputs: {source}, Q {tuple(q.shape)}, K {tuple(k.shape)}, V {tuple(v.shape)}, "
              f"{'causal' if causal else 'non-causal'}, window {a.window}, block {a.block}")
        common = ["--q", qp, "--k", kp, "--v", vp] + ([] if causal else ["--no-causal"])
        pattern = ["--window", str(a.window), "--block", str(a.block)]
        dense_path, sparse_path = os.path.join(tmp, "dense.npy"), os.path.join(tmp, "sparse.npy")
        for backend, out in (("dense", dense_path), ("sparse", sparse_path)):
            p, _ = run_rvt(a.bin, ["forward", "--backend", backend, *common, *pattern, "--out", out])
            if p.returncode != 0:
                print(f"FAIL  rvtemporal forward --backend {backend} exited {p.returncode}: {p.stderr.strip()}")
                return 1
        p, rep = run_rvt(a.bin, ["parity", "--suite", "realistic", *common, *pattern])
        if p.returncode != 0 or rep is None:
            print(f"FAIL  rvtemporal parity exited {p.returncode}: {p.stderr.strip()}")
            return 1
        case = rep["result"]["suites"][0]["cases"][0]
        rvt_dense, rvt_sparse = np.load(dense_path), np.load(sparse_path)

        ref = dense_attention_f64(q, k, v, causal)
        if a.perturb:
            ref[0, 0, 0] += a.perturb
        print("-- dense attention: rvtemporal vs numpy (float64)")
        d = metrics(rvt_dense, ref)
        check.below("max_abs", d["max_abs"], a.tol_dense)
        check.below("nmse", d["nmse"], 1e-10)

        print("-- parity metrics (sparse vs dense): rvtemporal vs numpy on the same outputs")
        m = metrics(rvt_sparse, rvt_dense)
        got = case["metrics"]
        for name in ("max_abs", "mean_abs", "rmse", "rel_l1", "nmse", "cosine"):
            check.close(name, got[name], m[name], a.tol_metric, 1e-15)
        w = case["worst"]
        same_place = (w["pos"], w["head"], w["dim"]) == (m["worst"]["pos"], m["worst"]["head"], m["worst"]["dim"])
        check.report(same_place and w["got"] == m["worst"]["got"] and w["want"] == m["worst"]["want"],
                     f"worst element: rvtemporal pos {w['pos']} head {w['head']} dim {w['dim']}, numpy pos "
                     f"{m['worst']['pos']} head {m['worst']['head']} dim {m['worst']['dim']}")
        for h, ph in enumerate(case["details"]["per_head"]):
            check.close(f"head {h} max_abs", ph["max_abs"], m["per_head_max_abs"][h], a.tol_metric, 1e-15)

        print("-- parity metrics vs numpy's own dense reference (looser: the dense kernels differ by rounding)")
        t = metrics(rvt_sparse, ref)
        for name in ("rel_l1", "cosine", "nmse"):
            check.close(name, got[name], t[name], 1e-5, 1e-12)

        try:
            import torch  # noqa: F401
        except ImportError:
            print("skip  torch: `import torch` failed, PyTorch check skipped")
        else:
            import torch.nn.functional as F
            group = q.shape[1] // k.shape[1]
            tq = torch.from_numpy(q.astype(np.float64)).permute(1, 0, 2)
            tk = torch.from_numpy(np.repeat(k, group, axis=1).astype(np.float64)).permute(1, 0, 2)
            tv = torch.from_numpy(np.repeat(v, group, axis=1).astype(np.float64)).permute(1, 0, 2)
            out = F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal).permute(1, 0, 2).numpy()
            print(f"-- dense attention: rvtemporal vs torch {torch.__version__} scaled_dot_product_attention")
            check.below("max_abs", metrics(rvt_dense, out)["max_abs"], a.tol_dense)
            check.below("max_abs numpy vs torch", float(np.abs(out - dense_attention_f64(q, k, v, causal)).max()),
                        1e-9)

    if check.failures:
        print(f"crosscheck: {check.failures} check(s) FAILED")
        return 1
    print("crosscheck: all checks agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
