"""Training challengers apart from the registry, one at a time or several processes at once.

A challenger at a cutoff depends only on the data up to that cutoff and its configuration (the
training is seeded), not on which version is champion: the promotion vote, saving and the
champion pointer come after, in the retrain task (``tasks/train.py``). So the trainings of a
backfill range can run side by side in worker processes, and their results be replayed through
the promotion rule in walk-forward order, giving the registry and forecasts of the serial run.

Workers are ``spawn``ed (the caller may hold TensorFlow's runtime and Prefect's threads: not
``fork``) and run TensorFlow with the caller's op-thread settings (:func:`limit_threads` to the
same numbers; 0, TensorFlow's default, stays the default). The thread count is part of the
arithmetic: measured, ``seq2seq`` trained on one op thread and on the default two differs in the
last bits of its weights (``multitask_rnn`` does not), so workers on one thread each, faster on
two cores, would not reproduce the serial run (docs/scale-out.md, "Parallel RNN retrains"). A pool is
started once per (workers, threads) and kept for the life of the process.

A process never gives back what TensorFlow keeps of a trained network (about 30 MB per
``multitask_rnn`` training with its forecast, ``keras.utils.clear_session`` or not; TensorFlow
issue 61791): a backtest of 226 weekly retrains in one process died at 7.7 GB after 160 of them,
in XLA's JIT (signal 11). So with ``trainings_per_process`` the workers are fresh processes that stop
after that many trainings each, and one such worker is the way to train many challengers one
after the other without the caller growing.
"""

from __future__ import annotations

import atexit
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from tasks.core.models.fallback import failure_reason
from tasks.core.models.rnn.promotion import TrainingDiverged, untrustworthy
from tasks.core.walk_forward import visible_history


@dataclass
class Challenger:
    """A training's result: ``fitted`` (an ``RnnFitted``) or, when it raised or gave an
    untrustworthy network, ``failure`` (one line); ``seconds`` either way."""

    fitted: Any | None
    failure: str | None
    seconds: float


def train_checked(forecaster: Any, history: pd.DataFrame, unique_id: str, cutoff: pd.Timestamp) -> Challenger:
    """Train ``forecaster`` on ``history`` up to ``cutoff``; a training that raises, or whose
    validation MAE or forecast at the cutoff is not finite, comes back as a failure."""
    visible = visible_history(history, cutoff)
    started = time.perf_counter()
    try:
        fitted = forecaster.fit(visible, unique_id)
        problem = untrustworthy(fitted.card["validation_mae"], fitted.forecast(visible, fitted.config.horizon).mean)
        if problem:
            raise TrainingDiverged(problem)
    except Exception as error:  # noqa: BLE001 (a failing retrain must not fail the night)
        return Challenger(None, failure_reason(error), time.perf_counter() - started)
    return Challenger(fitted, None, time.perf_counter() - started)


@dataclass(frozen=True)
class TrainingJob:
    forecaster: Any
    history: pd.DataFrame  # up to the cutoff (only what the training may see travels)
    unique_id: str
    cutoff: pd.Timestamp


def train_many(
    jobs: Sequence[TrainingJob], workers: int, trainings_per_process: int | None = None
) -> list[Challenger | None]:
    """Every job's challenger, in the order of ``jobs``, trained on up to ``workers`` processes
    with this process's TensorFlow thread settings (so bit for bit what :func:`train_checked`
    gives here). With ``trainings_per_process``, the jobs go in batches of that many per worker,
    each batch to fresh processes that stop after it; without, to a pool kept for the life of
    this process, and with ``workers`` <= 1 (or a single job) they train here. None where a
    worker could not deliver (it died, or the result could not travel back): the caller trains
    that one itself, so the outcome never depends on the pool."""
    if not jobs:
        return []
    if (workers <= 1 and trainings_per_process is None) or len(jobs) == 1:
        return [_run(job) for job in jobs]
    workers = max(1, min(workers, len(jobs)))
    if trainings_per_process is None:
        key = (workers, op_threads())
        results = _collect(_pool(key), jobs)
        if any(result is None for result in results):
            _close(key, wait=False)  # a broken pool is not reused
        return results
    # Not ProcessPoolExecutor(max_tasks_per_child=...): on Python 3.11 it hung this suite's backfill
    # with its worker gone and none started in its place (CPython gh-115634, fixed in 3.13 and later).
    batch = workers * trainings_per_process
    results = []
    for first in range(0, len(jobs), batch):
        with _new_pool(workers, op_threads()) as pool:
            results.extend(_collect(pool, jobs[first : first + batch]))
    return results


def _collect(pool: ProcessPoolExecutor, jobs: Sequence[TrainingJob]) -> list[Challenger | None]:
    futures = [pool.submit(_run, job) for job in jobs]
    results: list[Challenger | None] = []
    for future in futures:
        try:
            results.append(future.result())
        except Exception:  # noqa: BLE001 (BrokenProcessPool, a pickling error: train in the caller)
            results.append(None)
    return results


def op_threads() -> tuple[int, int]:
    """This process's TensorFlow (intra-op, inter-op) thread settings; 0: TensorFlow's default."""
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads()


def _run(job: TrainingJob) -> Challenger:
    return train_checked(job.forecaster, job.history, job.unique_id, job.cutoff)


def _start_worker(intra_op: int, inter_op: int) -> None:
    from tasks.core.models.rnn.training import limit_threads

    limit_threads(intra_op, inter_op)  # before any TensorFlow op of this process


PoolKey = tuple[int, tuple[int, int]]  # (workers, op threads)
_POOLS: dict[PoolKey, ProcessPoolExecutor] = {}
pools_started = 0  # worker pools this process has started (the tests count the fresh batches)


def _new_pool(workers: int, threads: tuple[int, int]) -> ProcessPoolExecutor:
    global pools_started
    pools_started += 1
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker, initargs=threads)


def _pool(key: PoolKey) -> ProcessPoolExecutor:
    pool = _POOLS.get(key)
    if pool is None:
        pool = _new_pool(*key)
        if not _POOLS:
            atexit.register(close_pools)
        _POOLS[key] = pool
    return pool


def _close(key: PoolKey, wait: bool = True) -> None:
    pool = _POOLS.pop(key, None)
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=True)


def close_pools() -> None:
    """Stop the worker processes (also done at interpreter exit)."""
    for key in list(_POOLS):
        _close(key)
