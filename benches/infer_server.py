#!/usr/bin/env python3
"""Hint-infer against a real local OpenAI-compatible server (issue 15, acceptance 5).

Starts llama-cpp-python's server (the venv the tests build, target/tmp/venvs/llama-server)
on the example model (SmolLM2-135M, n_ctx 2048), then runs `start infer` on N math problems at
each --jobs value and prints, per value: trajectories/min, generated tokens/s, the driver's CPU
(user + system of the `start` process) per generated token, and the driver's CPU share of the
wall time. Greedy sampling, no hints, a per-trajectory budget of --max-tokens.

    python3 benches/infer_server.py [--problems 16] [--max-tokens 128] [--jobs 1,8,64]

Needs a release build (cargo build --release) and the test venv (run the server tests once).
"""

import argparse
import json
import os
import pathlib
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--jobs", default="1,8,64")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    python = ROOT / "target/tmp/venvs/llama-server/bin/python"
    cache = pathlib.Path(os.environ.get("START_CACHE_DIR", pathlib.Path.home() / ".cache/start"))
    model = next(cache.glob("models/SmolLM2-135M-Instruct*.gguf"))
    start = ROOT / "target/release/start"
    port = free_port()
    log = open(ROOT / "target/tmp/bench-llama-server.log", "w")
    server = subprocess.Popen(
        [str(python), "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "smollm2",
         "--n_ctx", "2048", "--n_threads", str(args.threads), "--host", "127.0.0.1",
         "--port", str(port), "--interrupt_requests", "False"],
        stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/models", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        with tempfile.TemporaryDirectory() as tmp:
            problems = pathlib.Path(tmp) / "problems.jsonl"
            with open(problems, "w") as f:
                for i in range(args.problems):
                    f.write(json.dumps({"id": f"p{i}", "problem": f"What is {i + 3} times {i + 7}?"}) + "\n")
            print("| --jobs | trajectories | wall s | trajectories/min | generated tokens/s "
                  "| driver CPU µs/token | driver CPU share of wall |")
            print("|---|---|---|---|---|---|---|")
            for jobs in [int(j) for j in args.jobs.split(",")]:
                out = pathlib.Path(tmp) / f"out-{jobs}.jsonl"
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.monotonic()
                subprocess.run(
                    [str(start), "infer", "--quiet", "--model", url, "--model-name", "smollm2",
                     "--input", str(problems), "--output", str(out), "--jobs", str(jobs),
                     "--temperature", "0", "--top-k", "0", "--top-p", "1",
                     "--no-trigger-hints", "--no-end-hints", "--max-tokens", str(args.max_tokens),
                     "--read-timeout", "600"],
                    check=True)
                wall = time.monotonic() - t0
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                rows = [json.loads(line) for line in open(out)]
                tokens = sum(r["counters"]["generated_tokens"] for r in rows)
                print(f"| {jobs} | {len(rows)} | {wall:.1f} | {len(rows) / wall * 60:.1f} "
                      f"| {tokens / wall:.1f} | {cpu / max(tokens, 1) * 1e6:.0f} "
                      f"| {cpu / wall * 100:.2f}% |")
                sys.stdout.flush()
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
