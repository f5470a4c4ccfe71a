"""Tests of startd_client.py against a real startd at $START_SOCKET (run by the daemon's
cargo tests: crates/start-daemon/tests/all/python.rs)."""

import os
import socket
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from startd_client import Client, StartdError, WrongDaemonUid  # noqa: E402


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.c = Client(os.environ["START_SOCKET"], timeout=60)

    def tearDown(self):
        self.c.close()

    def test_ping_and_stats(self):
        self.assertTrue(self.c.ping())
        stats = self.c.stats()
        self.assertGreaterEqual(len(stats["workers"]), 1)
        self.assertIn("latency_ms", stats)

    def test_a_daemon_of_another_uid_is_refused(self):
        other = os.geteuid() + 1
        with self.assertRaises(WrongDaemonUid) as e:
            Client(os.environ["START_SOCKET"], timeout=60, expect_uid=other)
        self.assertEqual((e.exception.expected, e.exception.actual), (other, os.geteuid()))
        Client(os.environ["START_SOCKET"], timeout=60, expect_uid=os.geteuid()).close()

    def test_exec(self):
        out = self.c.exec("print(6 * 7)")
        self.assertEqual(out["stdout"], "42\n")
        self.assertEqual(out["status"], {"kind": "finished"})

    def test_exception_and_limit_are_outcomes(self):
        out = self.c.exec("1/0")
        self.assertEqual(out["status"]["kind"], "exception")
        self.assertEqual(out["status"]["name"], "ZeroDivisionError")
        out = self.c.exec("while True: pass", wall_time_ms=100)
        self.assertEqual(out["status"], {"kind": "limit_exceeded", "limit": "wall_time"})

    def test_session(self):
        with self.c.session() as s:
            s.run("x = 41")
            self.assertEqual(s.run("print(x + 1)")["stdout"], "42\n")
            name = s.name
        with self.assertRaises(StartdError) as e:
            self.c.run(name, "x")
        self.assertEqual(e.exception.kind, "no_such_session")

    def test_bad_request_is_an_error_reply(self):
        with self.assertRaises(StartdError) as e:
            self.c.call("no.such.op")
        self.assertEqual(e.exception.kind, "bad_request")
        self.assertTrue(self.c.ping())

    def test_oversized_frame_closes_the_connection(self):
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.settimeout(30)
        raw.connect(os.environ["START_SOCKET"])
        raw.sendall(struct.pack(">I", (16 << 20) + 1))
        (n,) = struct.unpack(">I", raw.recv(4))
        self.assertIn(b"frame_too_large", raw.recv(n))
        raw.close()
        self.assertTrue(self.c.ping())


if __name__ == "__main__":
    unittest.main(verbosity=2)
