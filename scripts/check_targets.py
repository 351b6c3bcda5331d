#!/usr/bin/env python3
"""Re-checks the speed and memory targets of issue 6 (docs/performance.md) on this machine.

Runs a fixed suite of `rvtemporal bench` and `rvtemporal forward` commands, saves every report with
the command and its UTC start time, then judges each target from those reports alone and prints
the verdicts as a Markdown table (and writes them to targets.json). The numbers come from
rvtemporal itself; this script only runs it and reads its JSON.

  scripts/check_targets.py [--bin build/apps/rvtemporal] [--out DIR] [--repeat K] [--quick]
  scripts/check_targets.py --from DIR       # judge the reports of an earlier run again

--repeat K runs the one-thread, two-thread, scaling and decode benches K times, interleaved (L1 M1
S1 DEC1 L2 ...): the VM's speed drifts, and a target is met only if every run meets it. --quick runs tiny
sizes (seconds): for trying the script, not for verdicts. One-thread runs are pinned to the last
CPU this process may use. Exit: 0 every measured target met, 1 one missed, 2 usage, 4 a command
failed or a report could not be read.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

NEVER, MET, MISSED, NOT_MEASURED = "not evaluated", "met", "missed", "not measured"
EXIT_OK, EXIT_MISSED, EXIT_USAGE, EXIT_IO = 0, 1, 2, 4


def suite(quick, repeat):
    """[(name, rvtemporal arguments, pinned to one CPU)], in the order they run."""
    json_out = ["-q", "--format", "json"]
    if quick:
        table = ["bench", "--seq", "1024", "--reps", "2", "--rounds", "1", "--warmup", "1", "--decode-at", "none"]
        scaling = ["bench", "--seq", "1024", "--scaling-at", "1024,4096", "--scaling-rounds", "1", "--reps", "2",
                   "--warmup", "1", "--no-reference", "--decode-at", "none"]
        dim64 = ["bench", "--preset", "llama8x64", "--seq", "1024", "--reps", "1", "--warmup", "0", "--no-reference",
                 "--decode-at", "none", "--threads", "1"]
        decode = ["bench", "--seq", "64", "--reps", "1", "--no-reference", "--decode-at", "1024,4096",
                  "--decode-steps", "16", "--dense-decode-steps", "4", "--threads", "1"]
        scale_n, no_dense_above = 65536, 32768
    else:
        table = ["bench", "--seq", "1024,2048,4096,8192", "--reps", "21", "--rounds", "5", "--warmup", "2",
                 "--decode-at", "none"]
        # Sparse scaling up to 32768; dense (0.86 s a call at 16384) only to 8192.
        scaling = ["bench", "--seq", "1024", "--scaling-at", "1024,4096,8192,16384,32768", "--scaling-rounds", "5",
                   "--reps", "7", "--warmup", "2", "--no-reference", "--no-dense-above", "8192", "--decode-at", "none"]
        dim64 = ["bench", "--preset", "llama8x64", "--seq", "1024,2048", "--reps", "11", "--warmup", "2",
                 "--no-reference", "--decode-at", "none", "--threads", "1"]
        # Five rounds of 256 steps each: one round lasts well under a millisecond, and a slow
        # stretch of the VM could cover it whole.
        decode = ["bench", "--seq", "64", "--reps", "1", "--no-reference", "--decode-at", "1024,4096,65536",
                  "--rounds", "5", "--threads", "1"]
        scale_n, no_dense_above = 1048576, 65536
    runs = []
    for k in range(1, repeat + 1):
        runs += [(f"L{k}", table + ["--threads", "1"] + json_out, True),
                 (f"M{k}", table + json_out, False),
                 (f"S{k}", scaling + json_out, False),
                 (f"DEC{k}", decode + json_out, True)]
    runs += [("D64", dim64 + json_out, True),
             # Two small N measure dense, which the bench then extrapolates to the large one.
             ("SCALE", ["bench", "--seq", f"2048,4096,{scale_n}", "--reps", "3", "--warmup", "1", "--no-reference",
                        "--decode-at", "none", "--no-dense-above", str(no_dense_above)] + json_out, False),
             ("FORWARD", ["forward", "--preset", "bench", "--seq", str(scale_n), "-q", "--json"], False)]
    return runs


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_one(binary, name, args, pinned_cpu, out_dir):
    """Runs one command, its report to DIR/NAME.json; returns its log entry (wall s, peak RSS)."""
    entry = {"name": name, "command": ["rvtemporal", *args], "pinned_cpu": pinned_cpu, "start_utc": utc_now()}
    report_path, err_path = os.path.join(out_dir, name + ".json"), os.path.join(out_dir, name + ".err")
    started = datetime.datetime.now()
    try:
        with open(report_path + ".part", "w") as out, open(err_path, "w") as err:
            pin = (lambda: os.sched_setaffinity(0, {pinned_cpu})) if pinned_cpu is not None else None
            proc = subprocess.Popen([binary, *args], stdout=out, stderr=err, preexec_fn=pin)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
    except OSError:
        if os.path.exists(report_path + ".part"):
            os.remove(report_path + ".part")
        raise
    entry["wall_s"] = round((datetime.datetime.now() - started).total_seconds(), 3)
    entry["peak_rss_bytes"] = usage.ru_maxrss * 1024
    entry["exit_code"] = os.waitstatus_to_exitcode(status)
    os.replace(report_path + ".part", report_path)
    return entry


def write_json(path, value):
    """Writes value to path through a temporary file, so a reader never sees half of it."""
    with open(path + ".part", "w") as f:
        json.dump(value, f, indent=1)
    os.replace(path + ".part", path)


def load_reports(out_dir):
    with open(os.path.join(out_dir, "runs.json")) as f:
        runs = json.load(f)
    reports = {}
    for entry in runs["runs"]:
        with open(os.path.join(out_dir, entry["name"] + ".json")) as f:
            reports[entry["name"]] = json.load(f)["result"]
    return runs, reports


def named(reports, prefix):
    """The reports whose name is prefix followed by a repeat number (L1, L2, ...)."""
    return {n: r for n, r in reports.items() if n.startswith(prefix) and n[len(prefix):].isdigit()}


def prefill_values(reports, pick, min_seq=1024, seqs=None):
    """(label, pick(row)) for the prefill rows of `reports` with N >= min_seq (and N in seqs)."""
    values = []
    for name, r in sorted(reports.items()):
        for row in r["prefill"]:
            if row["seq"] >= min_seq and (seqs is None or row["seq"] in seqs):
                v = pick(row)
                if v is not None:
                    values.append((f"{name} N={row['seq']}", v))
    return values


def scaling_values(reports, kernel, key="speedup", pick=None):
    """(label, value) per S run and N >= 4096: the kernel's `key`, or pick(its record) where given."""
    pick = pick or (lambda k: k.get(key))
    values = []
    for name, r in sorted(named(reports, "S").items()):
        if r["scaling"]["threads"] < 2:
            continue  # one CPU: nothing to scale to
        for row in r["scaling"]["rows"]:
            v = pick(row[kernel]) if row.get(kernel) else None  # dense: none past 8192
            if row["seq"] >= 4096 and v is not None:
                values.append((f"{name} N={row['seq']}", v))
    return values


def share_of_concurrent(k):
    """The two-thread speedup over what one-thread calls on every CPU at once got done together."""
    bound = k.get("concurrent_bound")  # reports from before it lack it
    return k["speedup"] / bound if bound else None


def targets(runs, reports):
    """[(target, threshold text, test, values)]: values are (label, number)."""
    only = lambda name: {name: reports[name]} if name in reports else {}
    ge = lambda bound: (lambda v: v >= bound)
    lt = lambda bound: (lambda v: v < bound)
    forward = next((e for e in runs["runs"] if e["name"] == "FORWARD"), None)
    scale_rows = [row for r in only("SCALE").values() for row in r["prefill"][-1:]]  # the large N
    decode_rows = [(name, row) for name, r in sorted(named(reports, "DEC").items()) for row in r["decode"]["rows"]]
    return [
        ("Dense causal prefill, dim 32, one thread, N >= 1024: % of one core's FMA peak", ">= 40%", ge(40.0),
         prefill_values(named(reports, "L"), lambda row: row["dense"]["pct_of_peak"])),
        ("Dense causal prefill, dim 64 (llama8x64), one thread, N >= 1024: % of peak", ">= 50%", ge(50.0),
         prefill_values(only("D64"), lambda row: row["dense"]["pct_of_peak"])),
        ("Sparse, bench preset, N = 1024, one thread: fast kernel vs scalar reference", ">= 10x", ge(10.0),
         prefill_values(named(reports, "L"), lambda row: row["fast_vs_ref"], seqs={1024})),
        ("Sparse vs dense speedup / edge ratio, N >= 1024, one and two threads", ">= 0.5", ge(0.5),
         prefill_values(named(reports, "L") | named(reports, "M"), lambda row: row["speedup"]["efficiency"])),
        ("Two threads vs one, sparse, N >= 4096", ">= 1.8x", ge(1.8), scaling_values(reports, "sparse")),
        ("Two threads vs one, dense, N >= 4096", ">= 1.8x", ge(1.8), scaling_values(reports, "dense")),
        ("Sparse, the most two threads could reach over the faster CPU alone, from one-thread calls pinned "
         "to each (not judged: it shows when one CPU ran slower)", "-", None,
         scaling_values(reports, "sparse", "balanced_bound")),
        ("Sparse, what one-thread calls on both CPUs at once got done together, over one alone (not judged: "
         "what the machine gave two independent copies of the kernel, in the same rounds)", "-", None,
         scaling_values(reports, "sparse", "concurrent_bound")),
        ("Dense, the same (not judged: all FMAs; far below 2, the two CPUs did not give two cores' worth)", "-", None,
         scaling_values(reports, "dense", "concurrent_bound")),
        ("Sparse, two threads' speedup over that bound (not judged: the share of it the threaded call got)", "-",
         None, scaling_values(reports, "sparse", pick=share_of_concurrent)),
        ("Sparse pass over the large N (bench median): s", "< 5 s", lt(5.0),
         [(f"SCALE N={row['seq']}", row["sparse"]["median_ms"] / 1000.0) for row in scale_rows]),
        ("Peak RSS of that bench run (after every N)", "< 3 GiB", lt(3 * 2**30),
         [(f"SCALE N={row['seq']} bytes", row["peak_rss_bytes"]) for row in scale_rows]),
        ("Dense at that N: extrapolated, never run (1 = so)", "= 1", ge(1),
         [(f"SCALE N={row['seq']}", int(row["dense"]["extrapolated"] and not row["dense"]["attempted"]))
          for row in scale_rows]),
        ("`forward` over that N, the whole command: wall s", "< 5 s", lt(5.0),
         [("FORWARD", forward["wall_s"])] if forward else []),
        ("`forward` over that N: peak RSS", "< 3 GiB", lt(3 * 2**30),
         [("FORWARD bytes", forward["peak_rss_bytes"])] if forward else []),
        ("Decode step, bench preset, T = 4096, one thread: ns per token", "<= 1000", lambda v: v <= 1000.0,
         [(f"{name} T={row['t']}", row["sparse"]["median_ns"]) for name, row in decode_rows if row["t"] == 4096]),
        ("Decode flat in T: the step at the largest T over the first (not judged: the spec's candidates "
         "grow as log T, issue 4)", "-", None,
         [(f"{name} T={row['t']}", row["sparse_vs_first"]) for name, row in decode_rows
          if row["t"] == max(t["t"] for _, t in decode_rows)]),
    ]


def judge(runs, reports):
    results = []
    for name, threshold, test, values in targets(runs, reports):
        if test is None:
            verdict = NEVER
        elif not values:
            verdict = NOT_MEASURED
        else:
            verdict = MET if all(test(v) for _, v in values) else MISSED
        results.append({"target": name, "threshold": threshold, "verdict": verdict,
                        "values": [{"run": label, "value": v} for label, v in values],
                        "failing": [label for label, v in values if test is not None and not test(v)]})
    return results


def fmt(v):
    if isinstance(v, int) and v > 2**20:
        return f"{v / 2**30:.2f} GiB"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def markdown(runs, results):
    quick = ["", "A --quick run: tiny sizes, for trying the script; its verdicts are not the targets'."]
    lines = [f"Machine: {runs['machine']}"] + (quick if runs["quick"] else []) + ["", "| target | threshold | measured | verdict |", "|---|---|---|---|"]
    for r in results:
        vals = [v["value"] for v in r["values"]]
        measured = "-" if not vals else fmt(vals[0]) if len(vals) == 1 else f"{fmt(min(vals))} - {fmt(max(vals))}"
        if r["failing"]:
            by_run = {v["run"]: v["value"] for v in r["values"]}
            measured += f" (missed: {', '.join(f'{run} {fmt(by_run[run])}' for run in r['failing'])})"
        lines.append(f"| {r['target']} | {r['threshold']} | {measured} | **{r['verdict']}** |")
    lines += ["", "Commands (UTC start, wall s):"]
    lines += [f"- {e['start_utc']} {e['name']}: `{' '.join(e['command'])}`"
              f"{' (pinned to CPU %d)' % e['pinned_cpu'] if e['pinned_cpu'] is not None else ''}, {e['wall_s']} s"
              for e in runs["runs"]]
    return "\n".join(lines)


def machine_line():
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return (f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')} model "
            f"{fields.get('model', '?')}), {len(os.sched_getaffinity(0))} CPUs usable")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # from any working directory
    p.add_argument("--bin", default=os.path.join(root, "build", "apps", "rvtemporal"),
                   help="the rvtemporal binary (default: the repository's build/apps/rvtemporal)")
    p.add_argument("--out", help="directory for the reports (default: the repository's out/targets-<UTC time>)")
    p.add_argument("--repeat", type=int, default=1, help="runs of the one-thread, two-thread, scaling and decode benches")
    p.add_argument("--quick", action="store_true", help="tiny sizes: try the script, no verdicts to quote")
    p.add_argument("--from", dest="from_dir", help="judge the reports saved in this directory, run nothing")
    a = p.parse_args()
    if a.repeat < 1:
        p.error("--repeat must be at least 1")
    try:
        if a.from_dir:
            out_dir = a.from_dir
        else:
            out_dir = a.out or os.path.join(root, "out", "targets-" + utc_now().replace(":", ""))
            os.makedirs(out_dir, exist_ok=True)
            last_cpu = max(os.sched_getaffinity(0))
            runs = {"machine": machine_line(), "quick": a.quick, "runs": []}
            for name, args, pinned in suite(a.quick, a.repeat):
                print(f"check_targets: {name}: rvtemporal {' '.join(args)}", file=sys.stderr, flush=True)
                entry = run_one(a.bin, name, args, last_cpu if pinned else None, out_dir)
                runs["runs"].append(entry)
                if entry["exit_code"] != 0:
                    print(f"check_targets: error: {name} exited with {entry['exit_code']}, see "
                          f"{os.path.join(out_dir, name + '.err')}", file=sys.stderr)
                    return EXIT_IO
            write_json(os.path.join(out_dir, "runs.json"), runs)
        runs, reports = load_reports(out_dir)
        results = judge(runs, reports)
    except (OSError, KeyError, ValueError, TypeError) as e:
        print(f"check_targets: error: {e}", file=sys.stderr)
        return EXIT_IO
    try:
        write_json(os.path.join(out_dir, "targets.json"), {"machine": runs["machine"], "quick": runs["quick"],
                                                          "targets": results})
    except OSError as e:
        print(f"check_targets: error: {e}", file=sys.stderr)
        return EXIT_IO
    print(markdown(runs, results))
    return EXIT_MISSED if any(r["verdict"] == MISSED for r in results) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
