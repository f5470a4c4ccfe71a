#!/usr/bin/env python3
"""Side by side, in one run: startd's SandboxFusion-compatible `POST /run_code`, bytedance's
own SandboxFusion server, and startd's unix socket; the same closed-loop client and load
(1, 16, 128 concurrent), trivial and sympy programs; p50, p99 and requests/s.

SandboxFusion is not part of this repository: set it up outside it (see
BENCHMARKS.md, "HTTP API vs SandboxFusion") and pass its URL; without --sandboxfusion its rows
are skipped. Only the standard library is used, so every target sees the same client.

    python3 benches/http_vs_sandboxfusion.py --startd target/release/startd \
        --sandboxfusion http://127.0.0.1:8000 [--seconds 8] [--json out.json]
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "crates", "start-daemon", "python"))
import startd_client  # noqa: E402

PROGRAMS = {
    "trivial": ("print(1+1)", "2"),
    "sympy": ("import sympy\nprint(sympy.factorint(2**64-1))", "{3: 1, 5: 1, 17: 1, 257: 1, 641: 1, 65537: 1, 6700417: 1}"),
}
LEVELS = [1, 16, 128]


def payload(code):
    # verl's reward payload (memory_limit_MB 1024, as verl sends).
    return json.dumps(
        {
            "compile_timeout": 10,
            "run_timeout": 10,
            "code": code,
            "stdin": None,
            "memory_limit_MB": 1024,
            "language": "python",
            "files": {},
            "fetch_files": [],
        }
    ).encode()


class HttpTarget:
    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.host, self.port, self.path = u.hostname, u.port or 80, (u.path.rstrip("/") + "/run_code")

    def connect(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=120)

    def call(self, conn, body):
        conn.request("POST", self.path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            return None, f"HTTP {r.status}"
        reply = json.loads(data)
        rr = reply.get("run_result") or {}
        if reply.get("status") != "Success":
            return None, f"{reply.get('status')}/{rr.get('status')}"
        return rr.get("stdout", ""), None


class SocketTarget:
    def __init__(self, path):
        self.path = path

    def connect(self):
        return startd_client.Client(self.path, timeout=120)

    def call(self, conn, body):
        code = json.loads(body)["code"]
        out = conn.exec(code, wall_time_ms=10_000, memory_bytes=1 << 30)
        if out["status"]["kind"] != "finished":
            return None, out["status"]["kind"]
        return out["stdout"], None


def run_level(target, code, expected, clients, seconds):
    body = payload(code)
    latencies, failures = [], {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    start_gate = threading.Barrier(clients + 1)

    def client():
        conn = target.connect()
        mine, bad = [], {}
        start_gate.wait()
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                out, err = target.call(conn, body)
            except Exception as e:  # noqa: BLE001 - counted as a failure of that kind
                out, err = None, type(e).__name__
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = target.connect()
            dt = time.perf_counter() - t0
            if err is None and out.strip() != expected:
                err = "wrong output"
            if err is None:
                mine.append(dt)
            else:
                bad[err] = bad.get(err, 0) + 1
        with lock:
            latencies.extend(mine)
            for k, v in bad.items():
                failures[k] = failures.get(k, 0) + v

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    latencies.sort()

    def pct(q):
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, max(0, int(q * len(latencies) + 0.999999) - 1))] * 1e3

    return {
        "ok": len(latencies),
        "failed": failures,
        "elapsed_s": elapsed,
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": statistics.fmean(latencies) * 1e3 if latencies else float("nan"),
    }


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_startd(binary, workers):
    folder = tempfile.mkdtemp(prefix="startd-bench-")
    sock = os.path.join(folder, "startd.sock")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--socket", sock, "--workers", str(workers), "--http", f"127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, RUST_LOG="warn"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc, url, sock
        except OSError:
            pass
        if proc.poll() is not None:
            sys.exit(f"startd exited ({proc.returncode})")
        time.sleep(0.1)
    proc.terminate()
    sys.exit("startd did not become healthy")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--startd", default=os.path.join(HERE, "..", "target", "release", "startd"))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--sandboxfusion", help="SandboxFusion's base URL, e.g. http://127.0.0.1:8000")
    ap.add_argument("--seconds", type=float, default=8.0, help="load time per row")
    ap.add_argument("--levels", default=",".join(map(str, LEVELS)))
    ap.add_argument("--programs", default=",".join(PROGRAMS))
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    proc, url, sock = start_startd(args.startd, args.workers)
    targets = [("startd /run_code (HTTP)", HttpTarget(url)), ("startd unix socket", SocketTarget(sock))]
    if args.sandboxfusion:
        targets.append(("SandboxFusion /run_code", HttpTarget(args.sandboxfusion)))
    rows = []
    try:
        for program in args.programs.split(","):
            code, expected = PROGRAMS[program]
            for clients in map(int, args.levels.split(",")):
                for name, target in targets:
                    r = run_level(target, code, expected, clients, args.seconds)
                    r.update(program=program, clients=clients, target=name)
                    rows.append(r)
                    print(
                        f"{program:8} c={clients:<4} {name:26} {r['rps']:9.1f} req/s  "
                        f"p50 {r['p50_ms']:9.2f} ms  p99 {r['p99_ms']:9.2f} ms  ok {r['ok']}  failed {r['failed']}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print("| program | clients | server | req/s | p50 ms | p99 ms | ok | failed |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        failed = ", ".join(f"{k}: {v}" for k, v in r["failed"].items()) or "0"
        print(
            f"| {r['program']} | {r['clients']} | {r['target']} | {r['rps']:,.1f} | {r['p50_ms']:,.2f} | "
            f"{r['p99_ms']:,.2f} | {r['ok']} | {failed} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
