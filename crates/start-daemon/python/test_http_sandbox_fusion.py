"""startd's HTTP API against SandboxFusion's own PyPI client (`sandbox-fusion`) and verl's
reward-path payload. Run by the Rust integration tests (tests/all/http.rs) with the venv
they own; START_HTTP is the server's base URL, START_HTTP_PREFIX its route prefix.

    python test_http_sandbox_fusion.py client|load|strict
"""

import base64
import json
import os
import socket
import sys
import threading
import time
import unittest
import urllib.parse

import requests
from sandbox_fusion import (
    CommandRunStatus,
    RunCodeRequest,
    RunCodeResponse,
    RunJupyterRequest,
    RunStatus,
    run_code,
    run_jupyter,
)

EP = os.environ["START_HTTP"].rstrip("/")
PREFIX = os.environ.get("START_HTTP_PREFIX", "")
TOKEN = os.environ.get("START_HTTP_TOKEN")
KEYS = {"status", "message", "compile_result", "run_result", "executor_pod_name", "files"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Client(unittest.TestCase):
    """The real client's run_code and run_jupyter; every reply parses in its models."""

    def run_py(self, code, **kw):
        # One attempt: a retry would hide a SandboxError.
        return run_code(RunCodeRequest(code=code, language="python", **kw), endpoint=EP, max_attempts=1)

    def test_success(self):
        r = self.run_py("print(1 + 1)")
        self.assertEqual(r.status, RunStatus.Success)
        self.assertEqual(r.message, "")
        self.assertIsNone(r.compile_result)
        self.assertEqual(r.run_result.status, CommandRunStatus.Finished)
        self.assertEqual(r.run_result.return_code, 0)
        self.assertEqual(r.run_result.stdout, "2\n")
        self.assertEqual(r.run_result.stderr, "")
        self.assertGreaterEqual(r.run_result.execution_time, 0)

    def test_python3_is_python(self):
        r = run_code(RunCodeRequest(code="print(3)", language="python"), endpoint=EP, max_attempts=1)
        raw = requests.post(f"{EP}/run_code", json={"code": "print(3)", "language": "python3"}).json()
        self.assertEqual(raw["run_result"]["stdout"], r.run_result.stdout)

    def test_exception_is_failed_not_sandbox_error(self):
        r = self.run_py("raise ValueError('boom')")
        self.assertEqual(r.status, RunStatus.Failed)
        self.assertEqual(r.run_result.status, CommandRunStatus.Finished)
        self.assertEqual(r.run_result.return_code, 1)
        self.assertIn("ValueError: boom", r.run_result.stderr)

    def test_exit_code(self):
        r = self.run_py("import sys\nprint('bye')\nsys.exit(3)")
        self.assertEqual(r.status, RunStatus.Failed)
        self.assertEqual(r.run_result.return_code, 3)
        self.assertEqual(r.run_result.stdout, "bye\n")

    def test_timeout_keeps_partial_output(self):
        started = time.monotonic()
        r = self.run_py("print('before', flush=True)\nwhile True:\n    pass", run_timeout=1)
        self.assertLess(time.monotonic() - started, 8)
        self.assertEqual(r.status, RunStatus.Failed)
        self.assertEqual(r.run_result.status, CommandRunStatus.TimeLimitExceeded)
        self.assertIsNone(r.run_result.return_code)
        self.assertEqual(r.run_result.stdout, "before\n")

    def test_stdin(self):
        r = self.run_py("import sys\nprint(sys.stdin.read().upper())", stdin="abc")
        self.assertEqual(r.run_result.stdout, "ABC\n")
        r = self.run_py("import sys\nprint(repr(sys.stdin.read()))", stdin=None)
        self.assertEqual(r.run_result.stdout, "''\n")

    def test_files_in_and_out(self):
        code = (
            "print(open('data/in.txt').read())\n"
            "open('out.bin', 'wb').write(bytes(range(256)))\n"
            "raise SystemExit(2)\n"
        )
        r = self.run_py(
            code,
            files={"data/in.txt": b64(b"hello"), "empty": None},
            fetch_files=["out.bin", "data/in.txt", "empty", "missing.txt"],
        )
        self.assertEqual(r.status, RunStatus.Failed)
        self.assertEqual(r.run_result.return_code, 2)
        self.assertEqual(r.run_result.stdout, "hello\n")
        self.assertEqual(base64.b64decode(r.files["out.bin"]), bytes(range(256)))
        self.assertEqual(base64.b64decode(r.files["data/in.txt"]), b"hello")
        self.assertEqual(r.files["empty"], "")
        self.assertNotIn("missing.txt", r.files)

    def test_every_key_is_present(self):
        raw = requests.post(f"{EP}/run_code", json={"code": "print(1)", "language": "python"}).json()
        self.assertEqual(set(raw), KEYS)
        RunCodeResponse(**raw)

    def test_jupyter(self):
        cells = [
            "a = 123",
            "a",
            "print(a)",
            'import sys; sys.stderr.write("stderr message")',
            'raise RuntimeError("error message")',
            "print(a + 1)",
        ]
        r = run_jupyter(RunJupyterRequest(cells=cells, cell_timeout=5), endpoint=EP, max_attempts=1)
        self.assertEqual(r.status, RunStatus.Success, r)
        self.assertEqual(len(r.cells), len(cells))
        self.assertIn("123", r.cells[1].stdout)
        self.assertEqual(r.cells[2].stdout, "123\n")
        self.assertIn("stderr message", r.cells[3].stderr)
        self.assertEqual(r.cells[4].error[0]["ename"], "RuntimeError")
        self.assertEqual(r.cells[4].error[0]["evalue"], "error message")
        self.assertEqual(r.cells[5].stdout, "124\n")
        self.assertEqual(r.driver.status, CommandRunStatus.Finished)

    def test_jupyter_files_and_timeout(self):
        r = run_jupyter(
            RunJupyterRequest(
                cells=["print(open('in.txt').read())", "open('o.txt', 'w').write('out')"],
                files={"in.txt": b64(b"jin")},
                fetch_files=["o.txt"],
            ),
            endpoint=EP,
            max_attempts=1,
        )
        self.assertEqual(r.cells[0].stdout, "jin\n")
        self.assertEqual(base64.b64decode(r.files["o.txt"]), b"out")
        r = run_jupyter(
            RunJupyterRequest(cells=["print(1)", "while True: pass", "print(2)"], cell_timeout=1),
            endpoint=EP,
            max_attempts=1,
        )
        self.assertEqual(r.status, RunStatus.Failed)
        self.assertEqual(len(r.cells), 2)
        self.assertEqual(r.driver.status, CommandRunStatus.TimeLimitExceeded)

    def test_liveness_routes_and_prefix(self):
        self.assertEqual(requests.get(f"{EP}/v1/ping").json(), "pong")
        self.assertEqual(requests.get(f"{EP}/").status_code, 200)
        health = requests.get(f"{EP}/health")
        self.assertEqual(health.status_code, 200, health.text)
        self.assertGreaterEqual(health.json()["workers_up"], 1)
        if PREFIX:
            r = run_code(RunCodeRequest(code="print(5)", language="python"), endpoint=EP + PREFIX, max_attempts=1)
            self.assertEqual(r.run_result.stdout, "5\n")
            self.assertEqual(requests.get(f"{EP}{PREFIX}/v1/ping").json(), "pong")
        metrics = requests.get(f"{EP}/metrics").text
        for name in (
            "startd_http_requests_total",
            "startd_http_request_duration_seconds_bucket",
            "startd_http_replies_total",
            "startd_queue_depth",
            "startd_worker_restarts_total",
        ):
            self.assertIn(name, metrics)


# verl's status mapping, re-derived from verl/utils/reward_score/sandbox_fusion/utils.py
# (_process_single_case): True/False for a right/wrong answer, -1 sandbox or API error,
# -2 runtime error, -3 timeout, -4 compile error.
def verl_status(resp, expected):
    if resp is None:
        return -1
    status = resp.get("status")
    compile_result, run_result = resp.get("compile_result"), resp.get("run_result")
    if status == "SandboxError":
        return -1
    if status == "Failed":
        if compile_result and (
            compile_result.get("status") in ("Error", "TimeLimitExceeded")
            or (compile_result.get("status") == "Finished" and compile_result.get("return_code") != 0)
        ):
            return -4
        if run_result:
            rs = run_result.get("status")
            if rs == "TimeLimitExceeded":
                return -3
            if rs == "Error" or (rs == "Finished" and run_result.get("return_code") != 0):
                return -2
        return -1
    if status == "Success":
        if run_result and run_result.get("status") == "Finished":
            out = run_result.get("stdout") or ""
            return str(out).rstrip("\n") == str(expected).rstrip("\n")
        return -1
    return -1


def verl_payload(code, stdin, timeout=10):
    # verl's eight fields, exactly as its call_sandbox_api sends them.
    return {
        "compile_timeout": timeout,
        "run_timeout": timeout,
        "code": code,
        "stdin": stdin,
        "memory_limit_MB": 1024,
        "language": "python",
        "files": {},
        "fetch_files": [],
    }


CASES = [
    # (code, stdin, expected stdout, verl's value)
    ("print(int(input()) * 2)", "21", "42", True),
    ("print(int(input()) * 2)", "21", "43", False),
    ("print(sum(map(int, input().split())))", "1 2 3", "6", True),
    ("import sys\nsys.exit(3)", None, "", -2),
    ("1 / 0", None, "", -2),
    ("def f(:\n  pass", None, "", -2),
    ("import sympy\nprint(sympy.factorint(2**16 - 1))", None, "{3: 1, 5: 1, 17: 1, 257: 1}", True),
]


class Load(unittest.TestCase):
    """verl's reward payload from 64 threads x 50 requests: every answer right, none lost."""

    def test_verl_mapping_on_synthetic_replies(self):
        self.assertEqual(verl_status({"status": "SandboxError"}, ""), -1)
        self.assertEqual(verl_status(None, ""), -1)
        compile_error = {
            "status": "Failed",
            "compile_result": {"status": "Finished", "return_code": 1},
            "run_result": None,
        }
        self.assertEqual(verl_status(compile_error, ""), -4)
        self.assertEqual(
            verl_status({"status": "Failed", "compile_result": None, "run_result": {"status": "TimeLimitExceeded"}}, ""),
            -3,
        )

    def test_64_threads_x_50(self):
        threads, per_thread = 64, 50
        url = f"{EP}{PREFIX}/run_code"
        results, errors = [], []
        lock = threading.Lock()

        def worker(t):
            s = requests.Session()
            for i in range(per_thread):
                # A few timeouts (one each for the first eight threads) keep the mix honest
                # without holding the two workers for long.
                if i == 25 and t < 8:
                    code, stdin, expected, want, timeout = "while True: pass", None, "", -3, 1
                else:
                    code, stdin, expected, want = CASES[(t + i) % len(CASES)]
                    timeout = 10
                payload = json.dumps(verl_payload(code, stdin, timeout))
                try:
                    r = s.post(
                        url,
                        data=payload,
                        headers={"Content-Type": "application/json", "Accept": "application/json"},
                        timeout=timeout * 2 + 10,
                    )
                    body = r.json() if r.status_code == 200 else None
                    got = verl_status(body, expected)
                    with lock:
                        results.append((r.status_code, body and body["status"], got, want, code))
                except Exception as e:  # noqa: BLE001 - every failure is reported below
                    with lock:
                        errors.append(repr(e))

        ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        started = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        took = time.monotonic() - started
        self.assertEqual(errors, [])
        self.assertEqual(len(results), threads * per_thread)
        wrong = [r for r in results if r[0] != 200 or r[1] == "SandboxError" or r[2] != r[3]]
        self.assertEqual(wrong[:5], [], f"{len(wrong)} wrong answers")
        print(f"load: {len(results)} requests in {took:.1f} s", file=sys.stderr)


class Queue(unittest.TestCase):
    """A server whose job queue holds one job (--queue 1): requests past it wait for room
    instead of being refused, while their budget lasts."""

    def test_a_full_queue_waits(self):
        results = []
        lock = threading.Lock()

        def worker(t):
            s = requests.Session()
            for i in range(5):
                r = s.post(f"{EP}/run_code", json=verl_payload(f"print({t * 10 + i})", None), timeout=30)
                with lock:
                    results.append((r.status_code, r.json().get("run_result", {}).get("stdout"), f"{t * 10 + i}\n"))

        ts = [threading.Thread(target=worker, args=(t,)) for t in range(32)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(len(results), 160)
        self.assertEqual([r for r in results if r[0] != 200 or r[1] != r[2]], [])
        # The queue was full and requests waited for room.
        metrics = requests.get(f"{EP}/metrics").text
        retries = [l for l in metrics.splitlines() if l.startswith("startd_http_queue_retries_total ")]
        self.assertGreater(int(retries[0].split()[1]), 0, metrics)


def raw(method, path, body=b"", headers=None):
    r = requests.request(method, f"{EP}{path}", data=body, headers=headers or {}, timeout=30)
    return r


class Strict(unittest.TestCase):
    """A server with a token, a small body cap, short client timeouts, one worker and a 1 s
    budget margin: malformed requests get a 4xx and the server keeps serving."""

    def auth(self):
        return {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def post(self, body, path="/run_code"):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        return raw("POST", path, body, self.auth())

    def assert_serving(self):
        r = self.post({"code": "print('alive')", "language": "python"})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["run_result"]["stdout"], "alive\n")

    def test_token(self):
        r = raw("POST", "/run_code", json.dumps({"code": "print(1)", "language": "python"}))
        self.assertEqual(r.status_code, 401)
        r = raw("POST", "/run_code", b"{}", {"Authorization": "Bearer wrong"})
        self.assertEqual(r.status_code, 401)
        self.assertEqual(raw("GET", "/metrics").status_code, 401)
        # Probes need no token.
        self.assertEqual(raw("GET", "/health").status_code, 200)
        self.assertEqual(raw("GET", "/v1/ping").json(), "pong")
        self.assert_serving()

    def test_malformed(self):
        cases = [
            (b"{not json", 400),
            ({"language": "python"}, 422),
            ({"code": 5, "language": "python"}, 422),
            ({"code": "print(1)", "language": "cpp"}, 422),
            ({"code": "print(1)", "language": "python", "run_timeout": -1}, 422),
            ({"code": "print(1)", "language": "python", "compile_timeout": -5}, 422),
            ({"code": "print(1)", "language": "python", "files": {"a": "not base64!"}}, 422),
            ({"code": "print(1)", "language": "python", "files": {"": "aGk="}}, 422),
            (b"x" * (2 << 20), 413),
        ]
        for body, want in cases:
            r = self.post(body)
            self.assertEqual(r.status_code, want, (str(body)[:80], r.text))
            self.assertIn("detail", r.json())
        r = self.post({"code": "print(1)", "language": "cpp"})
        self.assertIn("python", r.json()["detail"])
        r = self.post({"cells": ["1"], "kernel": "ir"}, "/run_jupyter")
        self.assertEqual(r.status_code, 422)
        # MAX_CELLS (1000).
        r = self.post({"cells": ["1"] * 1001}, "/run_jupyter")
        self.assertEqual(r.status_code, 422)
        self.assertIn("1000", r.json()["detail"])
        r = self.post({"cells": ["1"], "total_timeout": -1}, "/run_jupyter")
        self.assertEqual(r.status_code, 422)
        # A huge timeout is lowered to the server's ceiling, not refused.
        r = self.post({"code": "print(1)", "language": "python", "run_timeout": 1e300})
        self.assertEqual(r.json()["status"], "Success", r.text)
        self.assertEqual(raw("GET", "/no/such/route").status_code, 404)
        self.assert_serving()

    def test_slow_clients(self):
        host, port = urllib.parse.urlparse(EP).hostname, urllib.parse.urlparse(EP).port
        # Headers that never finish: the connection is closed after the header timeout.
        s = socket.create_connection((host, port))
        s.sendall(b"POST /run_code HTTP/1.1\r\nHost: x\r\n")
        s.settimeout(10)
        started = time.monotonic()
        closed = s.recv(4096)
        self.assertTrue(closed == b"" or b" 408 " in closed, closed)
        self.assertLess(time.monotonic() - started, 8)
        s.close()
        # A body that never finishes: 408 after the body timeout.
        s = socket.create_connection((host, port))
        s.sendall(
            b"POST /run_code HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + TOKEN.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"code\""
        )
        s.settimeout(10)
        reply = s.recv(4096)
        self.assertIn(b" 408 ", reply.split(b"\r\n")[0])
        s.close()
        self.assert_serving()

    def test_queue_past_budget_is_504(self):
        # One worker busy for 3 s; a request whose budget (0.5 s + 1 s margin) ends first is
        # answered 504, which verl retries.
        hog = threading.Thread(
            target=self.post,
            args=({"code": "import time\ntime.sleep(3)", "language": "python", "run_timeout": 5},),
        )
        hog.start()
        time.sleep(0.5)
        started = time.monotonic()
        r = self.post({"code": "print(1)", "language": "python", "run_timeout": 0.5, "compile_timeout": 0})
        self.assertEqual(r.status_code, 504, r.text)
        self.assertLess(time.monotonic() - started, 2.5)
        hog.join()
        metrics = raw("GET", "/metrics", headers=self.auth()).text
        self.assertIn('startd_http_errors_total{kind="budget"}', metrics)
        self.assert_serving()


if __name__ == "__main__":
    which = {"client": Client, "load": Load, "strict": Strict, "queue": Queue}[sys.argv[1]]
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(which)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)
