"""Process pools for the walk-forward engine: how many workers, how the work is dealt, one BLAS
thread each. Infrastructure only: no model, no data, no Prefect.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import multiprocessing.pool
import os
from typing import Iterator, TypeVar

import numpy as np

try:  # optional: limits an already-loaded BLAS, which environment variables cannot
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - depends on the environment
    threadpool_limits = None

T = TypeVar("T")

CHUNKS_PER_WORKER = 4
"""Blocks are dealt in this many contiguous chunks per worker, handed out as workers free up: with
an expanding window later cutoffs cost more, and one chunk per worker left one core idle for a
third of the run (measured: pool 1.55x over in-process on 2 cores; 4 chunks per worker: see bench)."""
MIN_UNITS_PER_WORKER = 4
"""Below this many fit blocks per worker a process costs more (~1.5 s to import statsmodels)
than it saves, so small jobs (a nightly run's single cutoff) stay in-process."""

# Variables read by the BLAS/OpenMP runtimes when they load: one thread per worker process, since
# the pool already uses every core and the matrices of a SARIMA state space are tiny.
BLAS_THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
)  # fmt: skip


def one_blas_thread() -> contextlib.AbstractContextManager:
    """One BLAS thread while fitting, when threadpoolctl is installed.

    Measured on a busy 2-core machine: a SARIMA fit's Lyapunov solve on a tiny matrix spin-waits
    for OpenBLAS's second thread, and the seed's 92 fits took 15-35 s instead of 3 s. Workers
    already get one thread from the environment; this covers the in-process (n_jobs=1) path and a
    forkserver that other code started. Without threadpoolctl it does nothing.
    """
    if threadpool_limits is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def worker_count(n_jobs: int | None, n_units: int) -> int:
    if n_jobs is None or n_jobs == -1:
        n_jobs = _available_cores()
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, -1 or None, got {n_jobs}")
    return max(1, min(n_jobs, n_units // MIN_UNITS_PER_WORKER))


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))  # the cores this process may use, not the machine's
    return os.cpu_count() or 1


def contiguous_chunks(units: list[T], parts: int) -> list[list[T]]:
    """``units`` cut into ``parts`` consecutive runs whose lengths differ by at most one."""
    bounds = np.linspace(0, len(units), parts + 1).round().astype(int)
    return [units[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


_POOLS: dict[tuple[int, tuple[str, ...]], multiprocessing.pool.Pool] = {}


def worker_pool(workers: int, preload: list[str]) -> multiprocessing.pool.Pool:
    """A pool of worker processes (forkserver, or spawn where unavailable), one BLAS thread each,
    started on first use and kept for the life of this process.

    Kept, not rebuilt per call: a backfill calls the engine once per chunk of cutoffs, and a fresh
    worker's first SARIMA fit costs ~100 ms more than later ones (scipy and statsmodels warm-up),
    which measured 10-15% of a 92-cutoff run. Not ``fork``: the caller may be a Prefect worker
    with live threads, and forking a threaded process can deadlock. The forkserver imports the
    model modules once and forks workers from that. The pools are closed at interpreter exit.
    """
    key = (workers, tuple(dict.fromkeys(m for m in preload if m != "__main__")))
    pool = _POOLS.get(key)
    if pool is not None:
        return pool
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(list(key[1]))
    with _single_threaded_blas_env():
        pool = context.Pool(processes=workers)  # starts every worker now, inside the env
    if not _POOLS:
        atexit.register(_close_pools)
    _POOLS[key] = pool
    return pool


def _close_pools() -> None:
    for pool in _POOLS.values():
        pool.terminate()
        pool.join()
    _POOLS.clear()


@contextlib.contextmanager
def _single_threaded_blas_env() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}
    os.environ.update({name: "1" for name in BLAS_THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
