"""A dependency-free client for startd, the start sandbox daemon (standard library only).

    from startd_client import Client
    with Client() as c:                       # $START_SOCKET or the default path
        out = c.exec("print(6 * 7)", wall_time_ms=2000)
        assert out["stdout"] == "42\\n"
        with c.session() as s:
            s.run("x = 41")
            assert s.run("print(x + 1)")["stdout"] == "42\\n"

Each frame is a 4-byte big-endian length followed by UTF-8 JSON; see crates/start-daemon/PROTOCOL.md.
A Client is not thread-safe: use one per thread (connections are cheap).

Before sending anything, a Client checks who answers (SO_PEERCRED): the daemon must run as
``expect_uid``, else $START_DAEMON_UID, else this process's effective uid; anything else raises
WrongDaemonUid (another user may have put a fake daemon on the socket's path).
"""

import json
import os
import socket
import struct
import tempfile

__all__ = [
    "Client",
    "Session",
    "StartdError",
    "WrongDaemonUid",
    "default_socket_path",
    "MAX_FRAME_BYTES",
]

#: The largest frame body the daemon accepts (16 MiB).
MAX_FRAME_BYTES = 16 << 20


def default_socket_path():
    """$START_SOCKET, else $XDG_RUNTIME_DIR/start/startd.sock, else <tmp>/start-<uid>/startd.sock."""
    if os.environ.get("START_SOCKET"):
        return os.environ["START_SOCKET"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "start", "startd.sock")
    return os.path.join(tempfile.gettempdir(), "start-%d" % os.getuid(), "startd.sock")


class StartdError(Exception):
    """The daemon answered with an error (``kind`` is e.g. ``busy``, ``session_ended``)."""

    def __init__(self, kind, message):
        super().__init__("%s: %s" % (kind, message))
        self.kind = kind
        self.message = message


class WrongDaemonUid(ConnectionError):
    """The process answering on the socket runs as another uid than the expected one."""

    def __init__(self, path, expected, actual):
        super().__init__(
            "the process answering on %s runs as uid %d, not uid %d as expected; it may not be a "
            "real startd, so nothing was sent. Stop it or remove the socket and start startd as "
            "uid %d, or set START_DAEMON_UID=%d if that daemon is the one you mean"
            % (path, actual, expected, expected, actual)
        )
        self.path = path
        self.expected = expected
        self.actual = actual


def _expected_uid(expect_uid):
    if expect_uid is not None:
        return int(expect_uid)
    env = os.environ.get("START_DAEMON_UID", "").strip()
    if env:
        try:
            return int(env)
        except ValueError:
            raise ValueError("START_DAEMON_UID=%r is not a uid" % env) from None
    return os.geteuid()


class Client:
    """One connection to startd. Methods block until the reply comes."""

    def __init__(self, path=None, timeout=None, expect_uid=None):
        self.path = path or default_socket_path()
        expected = _expected_uid(expect_uid)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(self.path)
            size = struct.calcsize("3i")
            cred = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, size)
            _pid, uid, _gid = struct.unpack("3i", cred)
            if uid != expected:
                raise WrongDaemonUid(self.path, expected, uid)
        except BaseException:
            self._sock.close()
            raise
        self._next_id = 1
        self._early = {}

    def close(self):
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- framing -----------------------------------------------------------------------------

    def _send(self, obj):
        body = json.dumps(obj).encode("utf-8")
        if len(body) > MAX_FRAME_BYTES:
            raise ValueError("request of %d bytes is over the frame limit" % len(body))
        self._sock.sendall(struct.pack(">I", len(body)) + body)

    def _recv_exact(self, n):
        chunks = []
        while n:
            chunk = self._sock.recv(min(n, 1 << 20))
            if not chunk:
                raise ConnectionError("startd closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _recv(self):
        (n,) = struct.unpack(">I", self._recv_exact(4))
        if n > MAX_FRAME_BYTES:
            raise ConnectionError("reply of %d bytes is over the frame limit" % n)
        return json.loads(self._recv_exact(n).decode("utf-8"))

    def call(self, op, **fields):
        """Sends one request and returns the ``ok`` part of its reply; raises StartdError."""
        rid = self._next_id
        self._next_id += 1
        req = {"id": rid, "op": op}
        req.update(fields)
        self._send(req)
        while rid not in self._early:
            reply = self._recv()
            if reply.get("id") is None:
                err = reply.get("error") or {}
                raise StartdError(err.get("kind", "internal"), err.get("message", ""))
            self._early[reply["id"]] = reply
        reply = self._early.pop(rid)
        if "error" in reply:
            raise StartdError(reply["error"]["kind"], reply["error"]["message"])
        return reply["ok"]

    # -- operations --------------------------------------------------------------------------

    def ping(self):
        """True when the daemon answers."""
        return self.call("ping") == "pong"

    def stats(self):
        """The daemon's counters (a dict)."""
        return self.call("stats")["stats"]

    def exec(self, code, **limits):
        """Runs code in a fresh interpreter; returns the outcome dict.

        Limits are keyword arguments named as on the wire: wall_time_ms, fuel, memory_bytes,
        stdout_bytes, stderr_bytes, stdin, seed.
        """
        return self.call("exec", code=code, limits=limits)["outcome"]

    def open_session(self, **limits):
        """Opens a persistent interpreter; returns its name."""
        return self.call("session.open", limits=limits)["session"]

    def run(self, session, code, **limits):
        """Runs one cell in a session; returns the outcome dict."""
        return self.call("session.run", session=session, code=code, limits=limits)["outcome"]

    def close_session(self, session):
        self.call("session.close", session=session)

    def session(self, **limits):
        """A Session, usable as a context manager that closes it."""
        return Session(self, self.open_session(**limits))


class Session:
    """A persistent interpreter on the daemon."""

    def __init__(self, client, name):
        self.client = client
        self.name = name

    def run(self, code, **limits):
        return self.client.run(self.name, code, **limits)

    def close(self):
        self.client.close_session(self.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.close()
        except (StartdError, OSError):
            pass
