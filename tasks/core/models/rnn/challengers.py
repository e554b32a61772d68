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


def train_many(jobs: Sequence[TrainingJob], workers: int) -> list[Challenger | None]:
    """Every job's challenger, in the order of ``jobs``, trained on up to ``workers`` processes
    with this process's TensorFlow thread settings (so bit for bit what :func:`train_checked`
    gives here). None where a worker could not deliver (it died, or the result could not travel
    back): the caller trains that one itself, so the outcome never depends on the pool."""
    if not jobs:
        return []
    if workers <= 1 or len(jobs) == 1:
        return [_run(job) for job in jobs]
    key = (min(workers, len(jobs)), op_threads())
    pool = _pool(key)
    futures = [pool.submit(_run, job) for job in jobs]
    results: list[Challenger | None] = []
    for future in futures:
        try:
            results.append(future.result())
        except Exception:  # noqa: BLE001 (BrokenProcessPool, a pickling error: train in the caller)
            results.append(None)
    if any(result is None for result in results):
        _close(key, wait=False)  # a broken pool is not reused
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


_POOLS: dict[tuple[int, tuple[int, int]], ProcessPoolExecutor] = {}


def _pool(key: tuple[int, tuple[int, int]]) -> ProcessPoolExecutor:
    pool = _POOLS.get(key)
    if pool is None:
        workers, threads = key
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker, initargs=threads)
        if not _POOLS:
            atexit.register(close_pools)
        _POOLS[key] = pool
    return pool


def _close(key: tuple[int, tuple[int, int]], wait: bool = True) -> None:
    pool = _POOLS.pop(key, None)
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=True)


def close_pools() -> None:
    """Stop the worker processes (also done at interpreter exit)."""
    for key in list(_POOLS):
        _close(key)
