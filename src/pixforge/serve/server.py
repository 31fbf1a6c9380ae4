"""Run an app with uvicorn until SIGINT/SIGTERM, then finish the requests in flight before exiting."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

GRACEFUL_SECONDS = 30.0
"""How long a stopping server lets in-flight requests finish before it cancels them."""


class _Server(uvicorn.Server):
    """uvicorn's server, telling ``on_ready`` once it accepts connections (the port may have been 0)."""

    def __init__(self, config: uvicorn.Config, url: str, on_ready: Callable[[str], None]) -> None:
        super().__init__(config)
        self.url, self.on_ready = url, on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.on_ready(self.url)


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket (port 0: any free port); a one-line error when the address is taken or wrong."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.set_inheritable(True)
    return sock


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run_server(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, *, access_log: bool = True,
               graceful_seconds: float = GRACEFUL_SECONDS, on_ready: Callable[[str], None] = print) -> None:
    """Serve until a signal. Stopping closes the listening socket, lets every request in flight finish
    (up to ``graceful_seconds``), then drains the batch queues; nothing already accepted is dropped."""
    sock = listen_socket(host, port)
    bound = sock.getsockname()[1]
    url = f"http://{f'[{host}]' if ':' in host else host}:{bound}"
    config = uvicorn.Config(app, log_level="info", access_log=access_log, timeout_graceful_shutdown=graceful_seconds,
                            server_header=False)
    _Server(config, url, on_ready).run(sockets=[sock])
