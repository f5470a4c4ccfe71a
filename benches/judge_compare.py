#!/usr/bin/env python3
"""Judge throughput: 200 small programs x 10 stdin/stdout tests each, judged by `start judge`
(one interpreter per program, 2 programs at once) versus a native `python3` subprocess per test
(2 at once), in one run.

    python3 benches/judge_compare.py [--programs N]
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
START = ROOT / "target" / "release" / "start"


def programs(n):
    out = []
    for i in range(n):
        k = i % 7 + 1
        # Every fifth program is wrong, so the judge sees failures too.
        bug = " + 1" if i % 5 == 4 else ""
        prog = f"n = int(input())\nprint(sum(range(n)) * {k}{bug})\n"
        tests = [{"input": f"{t}\n", "output": f"{sum(range(t)) * k}\n"} for t in range(10, 20)]
        out.append({"id": i, "program": prog, "tests": tests})
    return out


def native(items, workers):
    def run_one(item):
        ok = True
        for t in item["tests"]:
            r = subprocess.run(["python3", "-c", item["program"]], input=t["input"],
                               capture_output=True, text=True, timeout=10)
            ok &= r.stdout.rstrip() == t["output"].rstrip()
        return ok
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        return sum(ex.map(run_one, items))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--programs", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    if not START.exists():
        subprocess.run(["cargo", "build", "--release", "--bin", "start"], cwd=ROOT, check=True)
    items = programs(args.programs)
    with tempfile.TemporaryDirectory() as d:
        src = pathlib.Path(d) / "solutions.jsonl"
        src.write_text("".join(json.dumps(x) + "\n" for x in items))
        res = pathlib.Path(d) / "results.jsonl"
        subprocess.run([str(START), "judge", "--quiet", "--input", str(src), "-o", str(res),
                        "-j", str(args.jobs)], check=True, capture_output=True)  # warm cache
        t = time.perf_counter()
        subprocess.run([str(START), "judge", "--quiet", "--input", str(src), "-o", str(res),
                        "-j", str(args.jobs)], check=True, capture_output=True)
        ours = time.perf_counter() - t
        passed = sum(json.loads(l)["passed"] for l in res.read_text().splitlines())
    t = time.perf_counter()
    native_passed = native(items, args.jobs)
    nat = time.perf_counter() - t
    n = args.programs
    print(f"{n} programs x 10 tests, {args.jobs} at once")
    print("| judge | wall s | programs/s | tests/s | passed | speed-up |")
    print("|---|---|---|---|---|---|")
    print(f"| start judge (sandbox, one interpreter per program) | {ours:.2f} | {n / ours:.1f} | {10 * n / ours:.0f} | {passed} | {nat / ours:.1f}x |")
    print(f"| native python3 subprocess per test (no isolation) | {nat:.2f} | {n / nat:.1f} | {10 * n / nat:.0f} | {native_passed} | 1.0x |")


if __name__ == "__main__":
    sys.exit(main())
