"""Helpers for the CLI tests: run the built binary, check exit codes and JSON reports."""
import contextlib
import json
import os
import subprocess
import tempfile
import threading
import unittest

BIN = os.environ.get("RVT_BIN", "build/apps/rvtemporal")
DATA = os.environ.get("RVT_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "data"))

# The one exit-code table (README.md "Exit codes").
OK, CHECK_FAILED, USAGE, BAD_INPUT, IO, UNSUPPORTED = 0, 1, 2, 3, 4, 5


def run(*args, stdin=None):
    """Runs rvtemporal with args; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, input=stdin, timeout=300)


@contextlib.contextmanager
def isa_env(isa):
    """RVT_ISA=isa for the runs inside ("" lets the binary pick the widest ISA of this CPU)."""
    old = os.environ.get("RVT_ISA")
    os.environ["RVT_ISA"] = isa
    try:
        yield
    finally:
        if old is None:
            del os.environ["RVT_ISA"]
        else:
            os.environ["RVT_ISA"] = old


def run_json(*args):
    """Runs with --json; returns (process, parsed report)."""
    p = run(*args, "--json")
    try:
        report = json.loads(p.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"stdout is not JSON ({e}): {p.stdout[:500]!r} stderr={p.stderr[:500]!r}")
    return p, report


def run_on_terminal(*args, timeout=300):
    """Runs rvtemporal with stderr on a pseudo-terminal (stdout piped): returns (exit code,
    stdout, everything written to stderr, control characters kept)."""
    import pty
    master, slave = pty.openpty()
    try:
        p = subprocess.run([BIN, *map(str, args)], stdout=subprocess.PIPE, stderr=slave, text=True, timeout=timeout)
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return p.returncode, p.stdout, b"".join(chunks).decode(errors="replace")


def first_stderr_line(*args, timeout=120):
    """Starts rvtemporal with args, returns the first line it writes to stderr (without the
    newline), then kills it: for jobs that announce themselves and then run for minutes."""
    p = subprocess.Popen([BIN, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    timer = threading.Timer(timeout, p.kill)  # never hang the suite if the line is missing
    timer.start()
    try:
        return p.stderr.readline().rstrip("\n")
    finally:
        timer.cancel()
        p.kill()
        p.wait()
        p.stderr.close()


class CliTestCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def assertExit(self, proc, code):
        self.assertEqual(proc.returncode, code,
                         f"exit {proc.returncode}, want {code}\nstdout: {proc.stdout[:2000]}\nstderr: {proc.stderr[:2000]}")

    def assertOneLineError(self, proc, *fragments):
        """stderr holds exactly one line, an error naming every fragment."""
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, f"want one stderr line, got: {proc.stderr!r}")
        for f in fragments:
            self.assertIn(f, lines[0])

    def assertEnvelope(self, report, command, exit_code):
        self.assertEqual(report["schema"], "rvtemporal.report/1")
        self.assertEqual(report["command"], command)
        self.assertEqual(report["exit_code"], exit_code)
        self.assertEqual(report["ok"], exit_code == 0)
        for key in ("version", "git_commit", "build_type", "compiler"):
            self.assertIn(key, report["tool"])
        for key in ("isa", "isa_best", "cores", "cpu_model", "cpu_id"):
            self.assertIn(key, report["host"])
        self.assertEqual(sorted(report["host"]["cpu_id"]), ["family", "model", "stepping", "vendor"])

    def no_temp_files(self, directory):
        return [f for f in os.listdir(directory) if ".tmp." in f]


def main():
    unittest.main(verbosity=2)
