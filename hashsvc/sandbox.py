"""Decoding in sandboxed child processes: a crash, a hang or a bomb kills the child, never the
API or the worker (rule 6 of ../shared/reliability-tests.md).

A small pool of long-lived children, each serving one task at a time over a socket pair.
Children are fresh interpreters (``subprocess``, i.e. fork+exec, like multiprocessing's
``spawn`` but without re-running the parent's ``__main__``, so any entry point is safe).
Every child limits its address space (``RLIMIT_AS``) and its CPU time per task
(``RLIMIT_CPU``, re-armed before each task); the parent enforces a wall-clock timeout. A child
that dies or times out is killed and replaced, and the caller gets ``MediaRejected`` with
reason ``decoder_crashed`` or ``decoder_timeout``. Domain errors raised in the child come back
as the same types. Thread-safe: the API and the workers call it from anyio worker threads.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from hashsvc.config import Settings
from hashsvc.errors import HashsvcError, MediaRejected
from hashsvc.hashing import ComputedHash, MediaHashes, hash_media

T = TypeVar("T")

_START_TIMEOUT_S = 60.0  # a child imports numpy, Pillow and OpenCV before it is ready
_READY = "ready"

PlainFrames = list[list[tuple[str, bytes, int | None, str]]]


class SandboxError(RuntimeError):
    """An unexpected (non-domain) error inside the child; retryable, like in-process errors."""


class SandboxOutOfMemory(MemoryError):
    """The child ran out of its address-space limit (a decompression bomb, or a huge input)."""


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int
    cpu_s: int
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxLimits:
        return cls(
            settings.sandbox_memory_bytes, settings.sandbox_cpu_s, settings.sandbox_timeout_s
        )


def hash_media_plain(
    source: bytes | Path, settings: Settings, upload: bool
) -> tuple[str, PlainFrames]:
    """What a child runs: ``hash_media`` with a result made of plain picklable data."""
    media = hash_media(source, settings, upload=upload)
    frames = [[(h.signal, h.code, h.quality, h.variant) for h in f] for f in media.frames]
    return media.kind, frames


# --- child side ---------------------------------------------------------------------------


def _set_limit(which: int, soft: int) -> None:
    """Lower the soft and hard limit to ``soft`` (never above an inherited hard limit)."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, soft if which == resource.RLIMIT_AS else hard))


def _arm_cpu_limit(cpu_s: int) -> None:
    """Allow ``cpu_s`` more seconds of CPU from now (SIGXCPU kills the child beyond)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _set_limit(resource.RLIMIT_CPU, int(usage.ru_utime + usage.ru_stime) + 1 + cpu_s)


def _error_message(exc: BaseException) -> tuple[Any, ...]:
    """An exception as a picklable message (domain errors keep their type and attributes)."""
    if isinstance(exc, HashsvcError):
        return ("domain", type(exc), exc.message, dict(vars(exc)))
    if isinstance(exc, MemoryError):
        return ("memory", f"{type(exc).__name__}: {exc}")
    return ("error", f"{type(exc).__name__}: {exc}")


CRASH_MARKER_ENV = "HASHSVC_TEST_CRASH_MARKER"


def _crash_if_marked(args: tuple[Any, ...]) -> None:
    """Test hook for R4's crasher: when ``HASHSVC_TEST_CRASH_MARKER`` is set in the child's
    environment, a task whose bytes contain it aborts the child as a decoder bug would (no
    real input crashes our decoders). Unset, as in production, it does nothing."""
    marker = os.environ.get(CRASH_MARKER_ENV, "").encode()
    if marker and any(isinstance(arg, bytes) and marker in arg for arg in args):
        os.abort()


def child_main() -> None:
    """Entry point of a child: ``python -c ... FD MEMORY_BYTES CPU_S`` (see ``_Child``)."""
    fd, memory_bytes, cpu_s = (int(arg) for arg in sys.argv[1:4])
    _serve(Connection(fd), memory_bytes, cpu_s)


def _serve(conn: Connection, memory_bytes: int, cpu_s: int) -> None:
    """Serve tasks from the parent until it sends ``None`` or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    sys.path[:0] = [p for p in conn.recv() if p not in sys.path]  # the parent's import path
    _set_limit(resource.RLIMIT_AS, memory_bytes)
    conn.send(_READY)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        func, args = task
        _crash_if_marked(args)
        _arm_cpu_limit(cpu_s)
        try:
            reply: tuple[Any, ...] = ("ok", func(*args))
        except Exception as exc:  # the task boundary: every error goes back to the parent
            reply = _error_message(exc)
        conn.send(reply)
        if reply[0] == "memory":
            return  # the heap may be fragmented or half-freed: start afresh


# --- parent side --------------------------------------------------------------------------


class _ChildLost(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _Child:
    """One child process and the parent's end of its socket pair."""

    def __init__(self, limits: SandboxLimits) -> None:
        parent_sock, child_sock = socket.socketpair()
        code = "from hashsvc.sandbox import child_main; child_main()"
        limits_args = [str(limits.memory_bytes), str(limits.cpu_s)]
        with child_sock:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, str(child_sock.fileno()), *limits_args],
                pass_fds=[child_sock.fileno()],
                stdin=subprocess.DEVNULL,
            )
        self.conn = Connection(parent_sock.detach())
        self.conn.send(sys.path)
        self.ready = False

    def call(self, func: Callable[..., Any], args: tuple[Any, ...], timeout_s: float) -> Any:
        """Run one task; raises ``_ChildLost`` if the child dies or exceeds ``timeout_s``."""
        if not self.ready:
            self._expect(_START_TIMEOUT_S, "starting")
            self.ready = True
        try:
            self.conn.send((func, args))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            raise self._lost() from None
        return self._expect(timeout_s, "decoding")

    def _expect(self, timeout_s: float, what: str) -> Any:
        if not self.conn.poll(timeout_s):
            raise _ChildLost("decoder_timeout", f"{what} took longer than {timeout_s:g} s")
        try:
            return self.conn.recv()
        except (EOFError, ConnectionResetError):
            raise self._lost() from None

    def _lost(self) -> _ChildLost:
        code = self._wait(5)
        if code == -signal.SIGXCPU:
            return _ChildLost("decoder_timeout", "decoding exceeded its CPU time limit")
        return _ChildLost("decoder_crashed", f"the decoder process crashed ({_describe(code)})")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 2.0) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self._wait(timeout_s)
        self.kill()

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self._wait(5)
        self.conn.close()

    def _wait(self, timeout_s: float) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout_s)
        return self.process.returncode


def _describe(returncode: int | None) -> str:
    if returncode is None or returncode >= 0:
        return f"exit status {returncode}"
    try:
        return f"signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal {-returncode}"


def _raise_reply(reply: tuple[Any, ...]) -> None:
    """Re-raise an error reply of a child in the parent (domain errors with their type)."""
    if reply[0] == "domain":
        _, cls, message, state = reply
        exc = cls.__new__(cls)
        Exception.__init__(exc, message)
        exc.__dict__.update(state)
        raise exc
    if reply[0] == "memory":
        raise SandboxOutOfMemory(f"the decoder ran out of memory ({reply[1]})")
    raise SandboxError(f"the decoder failed: {reply[1]}")


class SandboxPool:
    """``processes`` sandboxed children; ``run`` hands one task to a free child."""

    def __init__(self, limits: SandboxLimits, processes: int = 2) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(processes)
        self._free = [_Child(limits) for _ in range(processes)]
        self._closed = False

    def run(self, func: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        """``func(*args)`` in a child (``func`` must be a module-level function)."""
        timeout = self.limits.timeout_s if timeout_s is None else timeout_s
        with self._slots:
            reply = self._call(func, args, timeout)
        if reply[0] != "ok":
            _raise_reply(reply)
        result: T = reply[1]
        return result

    def _call(self, func: Callable[..., Any], args: tuple[Any, ...], timeout: float) -> Any:
        """One task in a free child; a lost or spent child is replaced by a fresh one."""
        child = self._take()
        try:
            reply = child.call(func, args, timeout)
        except _ChildLost as lost:
            child.kill()
            self._give(_Child(self.limits))
            raise MediaRejected(lost.reason, str(lost)) from None
        except BaseException:
            child.kill()  # e.g. an unpicklable argument: the pipe state is unknown
            self._give(_Child(self.limits))
            raise
        if reply[0] == "memory" or not child.alive():  # a child exits after a MemoryError
            child.stop()
            child = _Child(self.limits)
        self._give(child)
        return reply

    def hash_media(
        self, source: bytes | Path, settings: Settings, *, upload: bool = False
    ) -> MediaHashes:
        """``hashing.hash_media`` in a child: the same hashes, bit for bit."""
        kind, frames = self.run(hash_media_plain, source, settings, upload)
        return MediaHashes(kind, [[ComputedHash(*h) for h in frame] for frame in frames])

    def close(self) -> None:
        with self._lock:
            self._closed, children, self._free = True, self._free, []
        for child in children:
            child.stop()

    def _take(self) -> _Child:
        with self._lock:
            if self._closed:
                raise RuntimeError("the sandbox pool is closed")
            return self._free.pop()

    def _give(self, child: _Child) -> None:
        with self._lock:
            closed = self._closed
            if not closed:
                self._free.append(child)
        if closed:
            child.stop()


_shared: tuple[int, SandboxPool] | None = None
_shared_lock = threading.Lock()


def shared_pool(settings: Settings) -> SandboxPool:
    """This process's pool (created on first use with ``settings``, closed at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            pool = SandboxPool(SandboxLimits.from_settings(settings), settings.sandbox_processes)
            atexit.register(pool.close)
            _shared = (os.getpid(), pool)
        return _shared[1]
