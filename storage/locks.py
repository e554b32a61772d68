"""Leases in storage: mutual exclusion between runs that share one storage root.

Two runs on one root (two overlapping backfills, a nightly run and a manual rerun) may each read,
merge and write the same file: the clean series (ingest), the metrics of an evaluation date and
the report (scoring), a model's champion pointer (a retrain). Every write is atomic, so a race
cannot tear a file, but it can lose an update: both read the old file, the later write drops
the other's change. A lease serialises those read-merge-write sections, and only those: fits and
forecasts run in parallel, since each (cutoff, model, series) file is written whole and a second
writer replaces it with the same values.

Mechanism: ``locks/<name>.lock`` created with an *exclusive* write, the one primitive both
kinds of storage offer: ``O_CREAT | O_EXCL`` on a local or network disk, a conditional PUT
(``If-None-Match: *``) on S3 and S3-compatible stores. The file holds a random token, the holder
(host, pid, purpose) and an expiry. Release deletes the file if it still holds our token.

A waiter polls until ``wait_s`` has passed, then gives up with :class:`StorageLocked` (exit 3,
one line naming the holder). A lease past its expiry belongs to a killed run, and so does one
taken on this machine by a process that no longer exists: the first waiter to create
``locks/<name>.lock.broken-<token>`` (also exclusive, so once per lease) deletes it and then
competes for the lease like anyone else. The expiry must exceed the longest section
held (a retrain: minutes; an ingest merge or a scoring: seconds).
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from fsspec.implementations.local import LocalFileSystem

from schemas.errors import Unavailable
from storage.fs import Root

LOCKS = "locks"
POLL_SECONDS = (0.2, 1.0)


@dataclass(frozen=True)
class LockPolicy:
    """How long a run waits for a lease, and how long a lease lasts without its holder."""

    wait_s: float = 1800.0
    lease_s: float = 900.0


class StorageLocked(Unavailable):
    """A lease stayed held by another run for longer than this run would wait."""


@dataclass(frozen=True)
class Lease:
    name: str
    token: str
    holder: str
    purpose: str
    expires_at: float
    waited_s: float


def create_exclusive(root: Root, path: str, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it exists; True if this call created it."""
    root.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    if isinstance(root.fs, LocalFileSystem):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return True
    try:
        root.fs.pipe_file(path, data, mode="create")
    except FileExistsError:
        return False
    return True


class StorageLocks:
    def __init__(self, root: Root, policy: LockPolicy) -> None:
        self.root = root
        self.policy = policy

    def _path(self, name: str) -> str:
        return self.root.join(LOCKS, f"{name}.lock")

    @contextmanager
    def hold(self, name: str, purpose: str) -> Iterator[Lease]:
        """Hold lease ``name`` for the body of the ``with`` block."""
        lease = self.acquire(name, purpose)
        try:
            yield lease
        finally:
            self.release(lease)

    def acquire(self, name: str, purpose: str) -> Lease:
        path = self._path(name)
        started = time.monotonic()
        token = uuid.uuid4().hex
        holder = f"{socket.gethostname()}:{os.getpid()}"
        while True:
            expires_at = time.time() + self.policy.lease_s
            body = {"token": token, "holder": holder, "purpose": purpose, "expires_at": expires_at}
            if create_exclusive(self.root, path, json.dumps(body).encode()):
                return Lease(name, token, holder, purpose, expires_at, time.monotonic() - started)
            current = self._read(path)
            if current is not None and (current.get("expires_at", 0) < time.time() or _holder_is_dead(current)):
                self._break(path, current)
                continue
            if time.monotonic() - started >= self.policy.wait_s:
                raise StorageLocked(_held_message(name, self.root.url(path), current, time.monotonic() - started))
            time.sleep(random.uniform(*POLL_SECONDS))

    def release(self, lease: Lease) -> None:
        path = self._path(lease.name)
        current = self._read(path)
        # A lease that expired may have been broken and taken by another run: not ours to delete.
        if current is not None and current.get("token") == lease.token:
            self.root.remove(path)

    def _read(self, path: str) -> dict | None:
        """The lease file's content; a file that cannot be parsed (its writer died between
        creating and writing it) counts as expired once older than a lease."""
        try:
            raw = self.root.read_bytes(path)
        except FileNotFoundError:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            modified = self.root.modified(path)
            return {"token": f"unreadable-{int(modified)}", "holder": "?", "purpose": "?",
                    "expires_at": 0 if time.time() - modified > self.policy.lease_s else time.time() + 1}

    def _break(self, path: str, stale: dict) -> None:
        """Delete an expired lease, once: only the waiter that claims its token may."""
        if not create_exclusive(self.root, f"{path}.broken-{stale['token']}", json.dumps(stale).encode()):
            return
        current = self._read(path)
        if current is not None and current.get("token") == stale.get("token"):
            self.root.remove(path)


def _holder_is_dead(lease: dict) -> bool:
    """True when the lease was taken on this machine by a process that no longer exists (a run
    killed here): no need to wait for its expiry. A holder on another machine cannot be checked."""
    host, _, pid = str(lease.get("holder", "")).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _held_message(name: str, url: str, current: dict | None, waited: float) -> str:
    holder = "another run" if current is None else f"{current.get('holder')} ({current.get('purpose')})"
    return f"storage lock {name!r} ({url}) is held by {holder}; gave up after waiting {waited:.0f} s"
