#!/usr/bin/env python3
"""Math answer checking, side by side: HuggingFace's math-verify and ours on the same pairs.

    PY=target/tmp/venvs/math-verify/bin/python   # made by `cargo test ... -- math_verify`
    $PY benches/math_compare.py verdicts PAIRS.jsonl OUT.jsonl
    $PY benches/math_compare.py bench PAIRS.jsonl --ours target/release/start [--reps 200]

`verdicts` writes one line per pair, {"gold", "pred", "math_verify": true|false|null}, for the
differential test (tests/all/math_verify.rs). `bench` times math-verify in this process (one
call at a time, after a warm-up pair) and ours through `start score --pairs --bare
--no-sandbox` on the same pairs repeated `--reps` times in one process (the process start is
measured apart and subtracted), and prints both per-pair times.

Both sides get bare answers: math-verify parses each as `$answer$` with its default extraction
(LaTeX and plain expressions) and `verify(gold, pred)` with its default timeout.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def math_verify_one(gold, pred):
    from math_verify import parse, verify

    try:
        g = parse("$" + gold + "$")
        p = parse("$" + pred + "$")
        return bool(verify(g, p))
    except Exception:
        return None


def cmd_verdicts(args):
    pairs = load(args.pairs)
    with open(args.out, "w", encoding="utf-8") as out:
        for pair in pairs:
            verdict = math_verify_one(pair["gold"], pair["pred"])
            out.write(json.dumps({"gold": pair["gold"], "pred": pair["pred"], "math_verify": verdict}) + "\n")


def run_ours(binary, path):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.jsonl")
        start = time.perf_counter()
        subprocess.run(
            [binary, "score", "--no-sandbox", "--bare", "--pairs", path, "--output", out],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - start


def cmd_bench(args):
    pairs = load(args.pairs)
    math_verify_one("1", "1")  # imports and first-call compilation, not per-pair work
    start = time.perf_counter()
    for pair in pairs:
        math_verify_one(pair["gold"], pair["pred"])
    mv = (time.perf_counter() - start) / len(pairs)
    with tempfile.TemporaryDirectory() as tmp:
        one = os.path.join(tmp, "one.jsonl")
        many = os.path.join(tmp, "many.jsonl")
        with open(one, "w", encoding="utf-8") as f:
            f.write(json.dumps({"gold": "1", "pred": "1"}) + "\n")
        with open(many, "w", encoding="utf-8") as f:
            for _ in range(args.reps):
                for pair in pairs:
                    f.write(json.dumps({"gold": pair["gold"], "pred": pair["pred"]}) + "\n")
        startup = min(run_ours(args.ours, one) for _ in range(3))
        total = min(run_ours(args.ours, many) for _ in range(3))
    ours = max(total - startup, 0.0) / (len(pairs) * args.reps)
    print(f"pairs: {len(pairs)} (ours: x{args.reps} in one process, start-up {startup * 1e3:.1f} ms subtracted)")
    print(f"math-verify: {mv * 1e3:.3f} ms per pair")
    print(f"ours:        {ours * 1e3:.4f} ms per pair")
    print(f"ours is {mv / ours:.0f}x faster" if ours > 0 else "ours: too fast to measure")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verdicts")
    v.add_argument("pairs")
    v.add_argument("out")
    b = sub.add_parser("bench")
    b.add_argument("pairs")
    b.add_argument("--ours", required=True, help="the start binary")
    b.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    {"verdicts": cmd_verdicts, "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
