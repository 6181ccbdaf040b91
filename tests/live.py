"""The real app behind a real uvicorn server, in a thread of the test process."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from hashsvc.api.app import create_app
from hashsvc.config import Settings


@dataclass
class LiveService:
    """The app behind a real uvicorn server in a thread, on a free loopback port."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_service(settings: Settings, redis_url: str) -> LiveService:
    sock = socket.socket()
    # Accepted connections inherit it; without it, Nagle + delayed ACK add 40 ms per request
    # (uvicorn sets it only on sockets it creates itself).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings, redis_url), log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return LiveService(f"http://127.0.0.1:{port}", server, thread)
