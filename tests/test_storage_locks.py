"""Storage leases (storage/locks.py): one holder at a time across processes on a local disk and
across clients of a real S3 API, expired leases broken once, a bounded wait ending in one line,
and the range windows a scoring run recomputes."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from schemas.errors import Unavailable
from storage.fs import Root
from storage.locks import LOCKS, LockPolicy, StorageLocked, StorageLocks
from tasks.core.evaluation.scoring import range_windows_named
from tests.test_s3_storage import STORAGE, s3_endpoint  # noqa: F401  (the fixture)

HOLDERS = 4
ROUNDS = 6


def _count_under_lease(url: str, holder: int) -> None:
    """Read a counter, pause, write it back + 1, under the lease; log when each hold began and
    ended. Without mutual exclusion the pause makes holders overwrite each other's increments."""
    root = Root.from_url(url)
    locks = StorageLocks(root, LockPolicy(wait_s=120, lease_s=60))
    counter = root.join("counter.json")
    for _ in range(ROUNDS):
        with locks.hold("counter", f"holder {holder}"):
            began = time.time()
            value = json.loads(root.read_bytes(counter)) if root.exists(counter) else 0
            time.sleep(0.02)
            root.write_bytes_atomic(counter, json.dumps(value + 1).encode())
            ended = time.time()
        log = root.join("holds", f"{holder}-{began:.6f}.json")
        root.write_bytes_atomic(log, json.dumps([began, ended]).encode())


def _assert_one_holder_at_a_time(url: str) -> None:
    root = Root.from_url(url)
    assert json.loads(root.read_bytes(root.join("counter.json"))) == HOLDERS * ROUNDS
    holds = sorted(json.loads(root.read_bytes(root.join("holds", n))) for n in root.listdir(root.join("holds")))
    assert len(holds) == HOLDERS * ROUNDS
    for (_, first_end), (second_start, _) in zip(holds, holds[1:]):
        assert second_start >= first_end, "two holders inside the lease at once"
    assert root.listdir(root.join(LOCKS)) == [], "a released lease left its file behind"


def test_processes_on_a_local_disk_hold_the_lease_one_at_a_time(tmp_path: Path):
    url = str(tmp_path / "root")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_count_under_lease, args=(url, n)) for n in range(HOLDERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    _assert_one_holder_at_a_time(url)


def test_clients_of_an_s3_api_hold_the_lease_one_at_a_time(s3_endpoint):  # noqa: F811
    url = f"{STORAGE}/locks-test"
    workers = [threading.Thread(target=_count_under_lease, args=(url, n)) for n in range(HOLDERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    _assert_one_holder_at_a_time(url)


def _write_lease(root: Root, name: str, body: bytes) -> str:
    path = root.join(LOCKS, f"{name}.lock")
    root.write_bytes_atomic(path, body)
    return path


def test_an_expired_lease_is_broken_once_and_taken(tmp_path: Path):
    root = Root.from_url(str(tmp_path))
    stale = {"token": "dead", "holder": "gone:1", "purpose": "killed run", "expires_at": time.time() - 1}
    _write_lease(root, "clean", json.dumps(stale).encode())
    locks = StorageLocks(root, LockPolicy(wait_s=5, lease_s=60))
    with locks.hold("clean", "next run") as lease:
        assert lease.waited_s < 5
        held = json.loads(root.read_bytes(root.join(LOCKS, "clean.lock")))
        assert held["token"] == lease.token
    assert root.listdir(root.join(LOCKS)) == ["clean.lock.broken-dead"]


def test_a_lease_of_a_process_gone_from_this_machine_is_broken_at_once(tmp_path: Path):
    root = Root.from_url(str(tmp_path))
    gone = multiprocessing.get_context("fork").Process(target=time.sleep, args=(0,))
    gone.start()
    gone.join()
    lease = {"token": "killed", "holder": f"{socket.gethostname()}:{gone.pid}", "purpose": "killed run", "expires_at": time.time() + 3600}
    _write_lease(root, "scores", json.dumps(lease).encode())
    with StorageLocks(root, LockPolicy(wait_s=2, lease_s=3600)).hold("scores", "rerun") as mine:
        assert mine.waited_s < 2
    alive = {**lease, "token": "alive", "holder": f"{socket.gethostname()}:{os.getpid()}"}
    _write_lease(root, "scores", json.dumps(alive).encode())
    with pytest.raises(StorageLocked):
        StorageLocks(root, LockPolicy(wait_s=0.5, lease_s=3600)).acquire("scores", "while its holder lives")


def test_a_lease_whose_writer_died_mid_write_is_broken_after_the_lease_time(tmp_path: Path):
    root = Root.from_url(str(tmp_path))
    path = _write_lease(root, "scores", b"")
    locks = StorageLocks(root, LockPolicy(wait_s=0.5, lease_s=3600))
    with pytest.raises(StorageLocked):
        locks.acquire("scores", "too early")  # an empty file younger than a lease: a writer at work
    old = time.time() - 7200
    os.utime(path, (old, old))
    with locks.hold("scores", "after the lease time"):
        pass


def test_a_live_lease_makes_the_waiter_give_up_with_one_line_naming_the_holder(tmp_path: Path):
    root = Root.from_url(str(tmp_path))
    holder = StorageLocks(root, LockPolicy(wait_s=1, lease_s=600))
    waiter = StorageLocks(root, LockPolicy(wait_s=1.5, lease_s=600))
    with holder.hold("clean", "ingest of portal.csv"):
        started = time.monotonic()
        with pytest.raises(StorageLocked) as caught:
            waiter.acquire("clean", "second ingest")
        waited = time.monotonic() - started
    assert isinstance(caught.value, Unavailable)
    message = str(caught.value)
    assert "\n" not in message and "'clean'" in message and "ingest of portal.csv" in message
    assert 1.5 <= waited < 10


def test_release_never_deletes_a_lease_another_run_took_over(tmp_path: Path):
    root = Root.from_url(str(tmp_path))
    locks = StorageLocks(root, LockPolicy(wait_s=1, lease_s=600))
    mine = locks.acquire("clean", "slow run")
    other = {"token": "other", "holder": "h:2", "purpose": "took over", "expires_at": time.time() + 600}
    _write_lease(root, "clean", json.dumps(other).encode())  # as if ours had expired and been broken
    locks.release(mine)
    assert json.loads(root.read_bytes(root.join(LOCKS, "clean.lock")))["token"] == "other"


def test_the_range_windows_other_runs_scored_are_rebuilt_from_their_names():
    names = ["last_7", "range:2019-03-01..2019-03-12", "last_28", "range:2019-03-05..2019-03-12"]
    rebuilt = range_windows_named(names)
    assert [(w.name, w.start, w.end) for w in rebuilt] == [
        ("range:2019-03-01..2019-03-12", pd.Timestamp("2019-03-01"), pd.Timestamp("2019-03-12")),
        ("range:2019-03-05..2019-03-12", pd.Timestamp("2019-03-05"), pd.Timestamp("2019-03-12")),
    ]
