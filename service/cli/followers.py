"""The follower processes of ``hcp-content serve`` when ``HCP_SERVE_PROCESSES`` > 1 (see
:mod:`service.api.forward` for what they answer and :mod:`service.store.edge_replica` for their vector copy)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess

from service.settings import Settings

log = logging.getLogger(__name__)


def listening_socket(host: str, port: int, *, first: bool) -> socket.socket:
    """A socket on ``host:port`` with ``SO_REUSEPORT``: each serving process listens on one of its own and the
    kernel spreads new connections over them by their addresses (one socket shared by all would go to whichever
    process woke first, which then takes every pending connection: with keep-alive clients one process got all
    the work). ``first`` (the leader): refuse a port another program already holds, which ``SO_REUSEPORT`` alone
    would silently share with a second ``hcp-content serve`` of the same user."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    if first:
        with socket.socket(family, kind, proto) as probe:
            # SO_REUSEADDR as uvicorn's own socket has it: connections of a previous run still in TIME_WAIT do not
            # count, a program listening there does
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)  # OSError "Address already in use" when taken
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def follower_main(settings: Settings, host: str, port: int, leader_socket: str) -> None:
    """A follower: builds its own components (no worker, no LLM, a following vector store) and answers on a
    socket of its own on the leader's port."""
    import uvicorn

    from service.api.forward import ForwardToLeader
    from service.app import create_app
    from service.cli.app import _interrupt, setup_logging
    from service.cli.http_protocol import limited_protocol
    from service.runtime import build_components

    # uvicorn raises the SIGTERM it caught again once it has shut down: it must unwind through `finally` (the
    # copy of the index is removed there), as in the leader (service.cli.app._main)
    signal.signal(signal.SIGTERM, _interrupt)
    settings = settings.model_copy(update={"worker_enabled": False, "migrate_on_start": False})
    setup_logging(settings)
    _stop_with_leader()
    try:
        components = build_components(settings, with_llm=False, role="follower")
    except KeyboardInterrupt:  # stopped while starting: build_components closed what it had opened
        return
    front = ForwardToLeader(create_app(settings, components), leader_socket)
    config = uvicorn.Config(front, log_level=settings.log_level, access_log=False,
                            http=limited_protocol(settings.max_header_bytes),
                            timeout_graceful_shutdown=settings.shutdown_grace_s)  # type: ignore[arg-type]
    try:
        uvicorn.Server(config).run(sockets=[listening_socket(host, port, first=False)])
    except KeyboardInterrupt:
        pass
    finally:
        components.close(timeout_s=settings.shutdown_grace_s / 2)


def _stop_with_leader(poll_s: float = 1.0) -> None:
    """A thread that stops this follower (SIGTERM to itself) once the leader is gone: a leader killed outright
    cannot stop its followers, and left running they would keep its port (and answer from a copy nobody
    updates), so the next ``hcp-content serve`` could not start."""
    leader = os.getppid()

    def watch() -> None:
        while os.getppid() == leader:
            time.sleep(poll_s)
        log.warning("the leader process %s is gone; this follower stops", leader)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="hcp-leader-watch", daemon=True).start()


class Followers:
    """Starts ``count`` followers and starts again any that dies (a crash, not a clean exit on a signal)."""

    def __init__(self, settings: Settings, host: str, port: int, leader_socket: str, count: int) -> None:
        self._args = (settings, host, port, leader_socket)
        self._context = multiprocessing.get_context("spawn")  # nothing of the leader's threads or locks
        self.processes: list[BaseProcess] = [self._spawn() for _ in range(count)]
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._restart_crashed, name="hcp-followers", daemon=True)
        self._watch.start()

    def _spawn(self) -> BaseProcess:
        process = self._context.Process(target=follower_main, args=self._args, name="hcp-follower", daemon=False)
        process.start()
        return process

    def _restart_crashed(self) -> None:
        while not self._stop.wait(1.0):
            for i, process in enumerate(self.processes):
                if not process.is_alive() and process.exitcode not in (None, 0) and not self._stop.is_set():
                    log.warning("serving process %s exited with %s; starting another", process.pid, process.exitcode)
                    self.processes[i] = self._spawn()

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        self._watch.join()
        for process in self.processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        for process in self.processes:
            process.join(timeout_s)
            if process.is_alive():
                process.kill()
                process.join()
