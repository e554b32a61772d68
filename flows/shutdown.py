"""The ``ridership`` command ends within seconds of a SIGTERM (what ``timeout``, ``kill``,
Kubernetes and a Prefect cancellation send), with one line and exit code 143.

Why it did not: while a flow runs, Prefect replaces the SIGTERM handler with its own, which raises
``TerminationSignal`` in the main thread and calls the previous handler only once the flow engine
has unwound: reporting the crash to the API, closing the Dask client and a LocalCluster, then at
interpreter exit the process pool and Prefect's temporary server. Each of those can wait. A
``timeout`` signals its whole process group, so the temporary server is gone and every API call
retries first (measured: a backfill waiting on a Dask scheduler without workers ran 150 s past
its SIGTERM, using CPU).

So the command watches for the signal below Python's handlers: ``signal.set_wakeup_fd`` is written
a byte for every signal that has a Python handler, whichever handler that is, and a thread reading
it gives the process ``GRACE_S`` to end the ordinary way (Prefect marks the run Crashed, leases
are released, pools and clusters closed). Past that, it kills the process's descendants (pool
and Dask workers, the temporary server), prints the line and exits with 143.

Nothing is left half-written either way: every storage write is a temporary file renamed into
place (``storage/fs.py``), so a forecast file is whole or absent and a rerun resumes from what is
stored; a lease (``storage/locks.py``) held by a process that is gone is broken by the next run on
this machine at once, without waiting for its expiry.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from typing import Iterator

EXIT_CODE = 128 + signal.SIGTERM
"""143: what a shell reports for a process ended by SIGTERM."""
GRACE_S = 6.0
"""Seconds the process has after a SIGTERM to end the ordinary way before it is ended."""


class Terminated(BaseException):
    """Raised in the main thread by the command's SIGTERM handler (outside a flow run, or once
    Prefect has unwound one). A BaseException, like KeyboardInterrupt: no ``except Exception``
    on the way up may swallow it."""


_told = threading.Lock()


def tell_terminated(command: str) -> None:
    """Print the command's one line for a SIGTERM, once (the main thread or the watcher)."""
    if _told.acquire(blocking=False):
        print(
            f"ridership {command}: terminated: stopped by SIGTERM; what was stored is complete "
            "(rerun the same command to resume)",
            file=sys.stderr, flush=True,
        )


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def end_promptly_on_sigterm(command: str, grace_s: float = GRACE_S) -> Iterator[None]:
    """While the body runs, a SIGTERM raises ``Terminated`` (when no flow is running) and ends
    the process ``grace_s`` later whatever it is doing."""
    if threading.current_thread() is not threading.main_thread():  # signals are the main thread's
        yield
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    watcher = threading.Thread(
        target=_watch, args=(reader, command, grace_s), name="ridership-sigterm-watch", daemon=True
    )
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGTERM, previous_handler)
        # The watcher ends on the closed socket unless it saw a SIGTERM; then it keeps its
        # deadline through the interpreter's exit (atexit handlers can wait too).
        writer.close()


def _watch(reader: socket.socket, command: str, grace_s: float) -> None:
    while True:
        try:
            received = reader.recv(64)
        except OSError:
            received = b""
        if not received:  # the command ended without a SIGTERM
            reader.close()
            return
        if signal.SIGTERM in received:
            break
    # The reader stays open (a signal Prefect sends itself on its way out is written to it too)
    # until the process ends.
    threading.Event().wait(grace_s)
    _stop_descendants()
    tell_terminated(command)
    os._exit(EXIT_CODE)


def _stop_descendants() -> None:
    """Kill every process this one started, and theirs: no pool worker, Dask worker or temporary
    server outlives the command (a pool worker left behind would wait for work forever: it holds
    both ends of the pool's task pipe). All are stopped (SIGSTOP) before any is killed, so that no
    replacement for a killed pool worker is forked meanwhile (the forkserver is stopped too)."""
    import psutil

    found: dict[int, psutil.Process] = {}
    for _ in range(5):  # until no new descendant appears
        try:
            new = [child for child in psutil.Process().children(recursive=True) if child.pid not in found]
        except psutil.Error:
            break
        if not new:
            break
        for child in new:
            with contextlib.suppress(psutil.Error):
                child.suspend()
            found[child.pid] = child
    for child in found.values():
        with contextlib.suppress(psutil.Error):
            child.kill()
