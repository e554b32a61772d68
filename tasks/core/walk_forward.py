"""The walk-forward engine every model shares: forecasts "as of" a list of past cutoffs.

For each series and cutoff the engine cuts the history at the cutoff itself
(``history.loc[:cutoff]``) before a model sees anything, so a forecast made at cutoff D cannot use
data after D whatever the model does. It then narrows that to the training window, fits (or
reuses the last fit, see ``refit_every``) and forecasts h = 1..horizon.

With a ``publication_lag`` of N days the cut is at D - N instead: the data a run on day D + 1
would have if the portal published each day N days late. The model is fitted on the window
ending D - N and forecasts N + horizon days from there; the first N are dropped, so the rows are
still labelled cutoff D with ``ds = D + h``, h = 1..horizon, and compare with a lag-0 backtest at
the same horizons.

A *global* model (one with ``fit_panel``, e.g. ``global_ridge``) is fitted once per refit block
on all the series of the call and forecasts each of them; a failed fit falls back for each.

Parallelism: with ``refit_every = k`` the cutoffs fall into blocks of k that share one fit and
nothing else, so blocks are independent (k = 1: every cutoff is). Blocks are dealt to worker
processes in contiguous runs; results are concatenated in the serial order, so a parallel run
returns exactly the serial frame.

Pure: frames in, a frame out; no I/O beyond the worker processes it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from schemas.forecasts import QUANTILE_COLUMNS, QUANTILE_LEVELS
from tasks.core.models.fallback import failure_reason, naive_fallback_version
from tasks.core.models.forecaster import DEFAULT_LEVELS, Fitted, Forecaster
from tasks.core.models.naive import SeasonalNaiveForecaster
from tasks.core.quantiles import quantiles_from_bands
from tasks.core.worker_pool import CHUNKS_PER_WORKER, contiguous_chunks, one_blas_thread, worker_count, worker_pool

FORECAST_COLUMNS = (
    "unique_id", "cutoff", "ds", "h", "model", "y_hat",
    "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95", "model_version", *QUANTILE_COLUMNS,
)  # fmt: skip
"""The forecast contract's columns (``schemas.forecasts``) minus ``run_id``/``created_at``; the
quantiles come last, after everything a reader of the pre-quantile contract knows."""

DATE_DTYPE = "datetime64[ns]"


class NonFiniteForecast(ValueError):
    """A model returned NaN or infinite point forecasts."""

_COLUMN_DTYPES = {
    "unique_id": str, "cutoff": DATE_DTYPE, "ds": DATE_DTYPE, "h": "int64", "model": str, "model_version": str,
}  # fmt: skip  (the interval and y_hat columns are float64)
CONTRACT_LEVELS = (80, 95)
DEFAULT_TRAINING_DAYS = 182
@dataclass(frozen=True)
class TrainingWindow:
    """Which days before a cutoff a model trains on: expanding from ``start``, or the last ``days``.

    Exactly one of the two is set; build with :meth:`expanding` or :meth:`rolling`.
    """

    start: pd.Timestamp | None = None
    days: int | None = None

    def __post_init__(self) -> None:
        if (self.start is None) == (self.days is None):
            raise ValueError("a training window is either expanding (start) or rolling (days), not both")
        if self.days is not None and self.days < 1:
            raise ValueError(f"a rolling window needs at least one day, got {self.days}")
        if self.start is not None:
            object.__setattr__(self, "start", pd.Timestamp(self.start).normalize())

    @classmethod
    def expanding(cls, start: str | pd.Timestamp) -> TrainingWindow:
        return cls(start=pd.Timestamp(start))

    @classmethod
    def rolling(cls, days: int) -> TrainingWindow:
        return cls(days=days)

    def first_day(self, cutoff: pd.Timestamp) -> pd.Timestamp:
        if self.start is not None:
            return self.start
        return cutoff - pd.Timedelta(days=self.days - 1)

    def select(self, visible: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
        """The window's rows of ``visible`` (history already cut at ``cutoff``)."""
        first = self.first_day(cutoff)
        if first > cutoff:
            raise ValueError(f"training window starts {first:%Y-%m-%d}, after the cutoff {cutoff:%Y-%m-%d}")
        return visible.loc[first:cutoff]

    def describe(self) -> str:
        return f"expanding from {self.start:%Y-%m-%d}" if self.start is not None else f"rolling {self.days} days"


DEFAULT_WINDOW = TrainingWindow.rolling(DEFAULT_TRAINING_DAYS)
"""The last 26 weeks, chosen by a backtest: SARIMA(1,0,0)(0,1,1,7), h = 1..14, cutoffs every 3
days in 2019-03..12 and 2021-03..11; mean MAE over h, bus / rail (2019 | 2021):
expanding from 2019-01 47,886 / 45,488 | 23,173 / 20,226; from 2018-01 48,395 / 46,752 |
24,733 / 22,064; rolling 56 d 53,064 / 53,264 | 23,357 / 19,465; 91 d 51,423 / 52,548 |
21,919 / 18,996; **182 d 48,824 / 47,732 | 21,218 / 18,998**; 365 d 48,431 / 47,297 |
22,352 / 19,491. The seed's expanding window ties with 182 d on the average (34,193 each), but a
rolling window keeps each fit's cost fixed (a fixed start gets slower every night), forgets a
break like 2020 instead of carrying it forever, and its 2021 95 % intervals covered 95 % / 92 %
(expanding: 99.7 % / 100 %, too wide). Reproduce the seed with ``expanding("2019-01-01")``.
"""


def historical_forecasts(
    history: pd.DataFrame,
    forecaster: Forecaster,
    unique_ids: Sequence[str],
    cutoffs: Sequence[pd.Timestamp | str],
    horizon: int = 14,
    window: TrainingWindow = DEFAULT_WINDOW,
    refit_every: int = 1,
    levels: Sequence[int] = DEFAULT_LEVELS,
    n_jobs: int | None = 1,
    publication_lag: int = 0,
) -> pd.DataFrame:
    """Forecasts of h = 1..``horizon`` from every cutoff, for every series, in the long format.

    ``history``: daily ``DatetimeIndex`` with one column per series (see
    :mod:`tasks.core.models.forecaster`); missing days become NaN rows so that position = day.
    ``refit_every``: fit at the 1st, (k+1)th, (2k+1)th... cutoff (in date order) and reuse that fit,
    with each later cutoff's own window, until the next refit. ``n_jobs``: worker processes;
    1 runs in this process, None or -1 one per available core. ``publication_lag``: days held back
    before each cutoff (module docstring): the forecast labelled cutoff D uses data up to D - lag.

    Returns :data:`FORECAST_COLUMNS` (plus ``y_lo_L``/``y_hi_L`` for any extra level), rows in
    ``unique_ids`` order, then cutoff, then h. Intervals a model does not give are NaN. Every
    model is also asked for the levels of :data:`schemas.forecasts.QUANTILE_LEVELS`, whatever
    ``levels`` says: the quantile columns come from them (:mod:`tasks.core.quantiles`).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    if refit_every < 1:
        raise ValueError(f"refit_every must be at least 1, got {refit_every}")
    if publication_lag < 0:
        raise ValueError(f"publication_lag must be 0 or more days, got {publication_lag}")
    history = as_daily(history)
    cutoff_index = _normalized_cutoffs(cutoffs)
    blocks = refit_blocks(cutoff_index, refit_every)
    if is_panel(forecaster):
        ids = tuple(str(uid) for uid in unique_ids)
        frame = _run_in_parallel(history, forecaster, [(ids, block) for block in blocks], horizon, window, levels, n_jobs, publication_lag)
        # Back to the contract's order (series, then cutoff), which the blocks interleave.
        order = {uid: i for i, uid in enumerate(ids)}
        return frame.sort_values(["unique_id", "cutoff", "h"], key=lambda c: c.map(order) if c.name == "unique_id" else c, kind="stable", ignore_index=True)
    units = [(str(uid), block) for uid in unique_ids for block in blocks]
    return _run_in_parallel(history, forecaster, units, horizon, window, levels, n_jobs, publication_lag)


def is_panel(forecaster: object) -> bool:
    """A global model: fitted on all the series of a call at once (``fit_panel``)."""
    return callable(getattr(forecaster, "fit_panel", None))


def _run_in_parallel(
    history: pd.DataFrame, forecaster: Forecaster, units: list, horizon: int, window: TrainingWindow,
    levels: Sequence[int], n_jobs: int | None, publication_lag: int,
) -> pd.DataFrame:
    workers = worker_count(n_jobs, len(units))
    lag = publication_lag
    if workers <= 1:
        return _run_units(history, forecaster, units, horizon, window, tuple(levels), lag)
    chunks = contiguous_chunks(units, min(len(units), workers * CHUNKS_PER_WORKER))
    payloads = [
        (_history_for(history, chunk, window, lag), forecaster, chunk, horizon, window, tuple(levels), lag)
        for chunk in chunks
    ]
    pool = worker_pool(workers, preload=[__name__, type(forecaster).__module__])
    # Largest training windows first (later cutoffs of an expanding window cost more), so the
    # last chunk handed out is a short one and no core idles at the end; results go back into
    # serial order below.
    heaviest_first = sorted(range(len(payloads)), key=lambda i: -len(payloads[i][0]) * len(chunks[i]))
    frames = pool.starmap(_run_units, [payloads[i] for i in heaviest_first], chunksize=1)
    in_serial_order = [frame for _, frame in sorted(zip(heaviest_first, frames))]
    return pd.concat(in_serial_order, ignore_index=True)


def forecast_at(
    fitted: Fitted,
    history: pd.DataFrame,
    cutoff: pd.Timestamp | str,
    unique_id: str,
    horizon: int,
    model_name: str,
    window: TrainingWindow | None = None,
    levels: Sequence[int] = DEFAULT_LEVELS,
    version: str | None = None,
) -> pd.DataFrame:
    """One cutoff's forecast rows from an already-fitted model (e.g. the weekly RNN champion).

    The history is cut at ``cutoff`` here too; ``window`` None hands the model everything up to
    the cutoff (a model that needs only its last N days takes them itself). ``version``, if
    given, replaces ``fitted.version`` (a previous champion standing in marks itself a fallback).
    """
    cutoff, train = _cut(history, cutoff, window)
    rows = _forecast_rows(fitted, train, cutoff, unique_id, horizon, model_name, tuple(levels), version)
    return _assemble([rows], tuple(levels))


def fallback_at(
    history: pd.DataFrame, cutoff: pd.Timestamp | str, unique_id: str, horizon: int, model_name: str, reason: str,
    window: TrainingWindow = DEFAULT_WINDOW, levels: Sequence[int] = DEFAULT_LEVELS,
) -> pd.DataFrame:
    """The seasonal-naive rows the engine substitutes for a failing fit, at one cutoff (an RNN with no champion)."""
    cutoff, train = _cut(history, cutoff, window)
    return _assemble([_fallback_rows(train, cutoff, unique_id, horizon, model_name, tuple(levels), reason)], tuple(levels))


def _cut(history: pd.DataFrame, cutoff: pd.Timestamp | str, window: TrainingWindow | None):
    cutoff = pd.Timestamp(cutoff).normalize()
    visible = visible_history(as_daily(history), cutoff)
    return cutoff, visible if window is None else window.select(visible, cutoff)


def visible_history(history: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """``history`` up to and including ``cutoff``, which must be its last row: the leakage guard."""
    visible = history.loc[:cutoff]
    if visible.empty or visible.index[-1] != cutoff:
        raise ValueError(f"history has no row for cutoff {cutoff:%Y-%m-%d}")
    return visible


def as_daily(history: pd.DataFrame) -> pd.DataFrame:
    """``history`` on a gap-free daily index (missing days as NaN rows), sorted, checked."""
    if not isinstance(history.index, pd.DatetimeIndex):
        raise TypeError("history must be indexed by a DatetimeIndex (ds)")
    if history.index.tz is not None:
        raise ValueError("history's index must be timezone-naive service dates")
    if not history.index.is_unique:
        raise ValueError("history has duplicate dates")
    if not history.index.is_monotonic_increasing:
        history = history.sort_index()
    if len(history) > 1 and (history.index[-1] - history.index[0]).days + 1 != len(history):
        # Seasonal models count positions, not dates: a missing day would shift every lag.
        history = history.asfreq("D")
    return history


def refit_blocks(cutoffs: pd.DatetimeIndex, refit_every: int) -> list[tuple[pd.Timestamp, ...]]:
    """Cutoffs (date order) grouped by the fit they share: one block per refit."""
    return [tuple(cutoffs[i : i + refit_every]) for i in range(0, len(cutoffs), refit_every)]


def _normalized_cutoffs(cutoffs: Sequence[pd.Timestamp | str]) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex([pd.Timestamp(c) for c in cutoffs])
    if index.tz is not None:
        raise ValueError("cutoffs must be timezone-naive dates")
    if not (index == index.normalize()).all():
        raise ValueError("cutoffs must be dates (midnight)")
    if not index.is_unique:
        raise ValueError("cutoffs contain duplicates")
    return index.sort_values()


Unit = tuple[str, tuple[pd.Timestamp, ...]]  # (unique_id, the cutoffs sharing one fit)
PanelUnit = tuple[tuple[str, ...], tuple[pd.Timestamp, ...]]  # a global model's: all its series


def _run_units(
    history: pd.DataFrame, forecaster: Forecaster, units: Sequence[Unit], horizon: int, window: TrainingWindow,
    levels: tuple[int, ...], lag: int = 0,
) -> pd.DataFrame:
    """Forecast every (series, refit block) unit in order; runs in-process or in a worker."""
    rows = []
    with one_blas_thread():
        if is_panel(forecaster):
            return _run_panel_units(history, forecaster, units, horizon, window, levels, lag)
        for unique_id, block in units:
            fitted: Fitted | None = None
            for cutoff in block:
                data_end = cutoff - pd.Timedelta(days=lag)
                train = window.select(visible_history(history, data_end), data_end)
                try:
                    if fitted is None:
                        fitted = forecaster.fit(train, unique_id)
                    rows.append(_forecast_rows(fitted, train, cutoff, unique_id, horizon, forecaster.name, levels, lag=lag))
                except Exception as error:  # noqa: BLE001 (a failing model must not fail the night)
                    if isinstance(forecaster, SeasonalNaiveForecaster):
                        raise
                    fitted = None  # the next cutoff of the block tries a fresh fit
                    reason = failure_reason(error)
                    rows.append(_fallback_rows(train, cutoff, unique_id, horizon, forecaster.name, levels, reason, lag))
    return _assemble(rows, levels)


def _run_panel_units(
    history: pd.DataFrame, forecaster: Forecaster, units: Sequence[PanelUnit], horizon: int, window: TrainingWindow,
    levels: tuple[int, ...], lag: int = 0,
) -> pd.DataFrame:
    """A global model's units: one fit per refit block for all its series, then each series'
    forecast; a failure falls back per series (a failed fit: for each of them)."""
    rows = []
    for unique_ids, block in units:
        fitted: dict[str, Fitted] | None = None
        for cutoff in block:
            data_end = cutoff - pd.Timedelta(days=lag)
            train = window.select(visible_history(history, data_end), data_end)
            try:
                if fitted is None:
                    fitted = forecaster.fit_panel(train, list(unique_ids))  # type: ignore[attr-defined]
            except Exception as error:  # noqa: BLE001 (a failing model must not fail the night)
                reason = failure_reason(error)
                rows.extend(_fallback_rows(train, cutoff, uid, horizon, forecaster.name, levels, reason, lag) for uid in unique_ids)
                continue
            for unique_id in unique_ids:
                try:
                    rows.append(_forecast_rows(fitted[unique_id], train, cutoff, unique_id, horizon, forecaster.name, levels, lag=lag))
                except Exception as error:  # noqa: BLE001
                    reason = failure_reason(error)
                    rows.append(_fallback_rows(train, cutoff, unique_id, horizon, forecaster.name, levels, reason, lag))
    return _assemble(rows, levels)


def _fallback_rows(
    train: pd.DataFrame, cutoff: pd.Timestamp, unique_id: str, horizon: int, model_name: str,
    levels: tuple[int, ...], reason: str, lag: int = 0,
) -> dict[str, np.ndarray]:
    """The seasonal-naive forecast under the failing model's name, its version marking why."""
    naive = SeasonalNaiveForecaster().fit(train, unique_id)
    version = naive_fallback_version(naive.version, reason)
    return _forecast_rows(naive, train, cutoff, unique_id, horizon, model_name, levels, version, lag)


def _forecast_rows(
    fitted: Fitted, train: pd.DataFrame, cutoff: pd.Timestamp, unique_id: str, horizon: int, model_name: str,
    levels: tuple[int, ...], version: str | None = None, lag: int = 0,
) -> dict[str, np.ndarray]:
    """Rows h = 1..horizon after ``cutoff``; ``train`` ends ``lag`` days before it, so the model
    forecasts ``lag + horizon`` days and the first ``lag`` are dropped."""
    asked = tuple(sorted(set(levels) | set(QUANTILE_LEVELS)))
    forecast = fitted.forecast(train, lag + horizon, asked)
    mean = np.asarray(forecast.mean, dtype=np.float64)
    if mean.shape != (lag + horizon,):
        raise ValueError(f"{model_name} returned {mean.shape} forecasts for horizon {lag + horizon}")
    mean = mean[lag:]
    if not np.isfinite(mean).all():
        raise NonFiniteForecast(f"{model_name} forecast {int((~np.isfinite(mean)).sum())} non-finite value(s)")
    steps = np.arange(1, horizon + 1, dtype=np.int64)
    rows = {
        "unique_id": np.full(horizon, unique_id, dtype=object),
        "cutoff": np.full(horizon, cutoff.to_datetime64().astype(DATE_DTYPE)),
        "ds": (cutoff + pd.to_timedelta(steps, unit="D")).to_numpy(dtype=DATE_DTYPE),
        "h": steps,
        "model": np.full(horizon, model_name, dtype=object),
        "y_hat": mean,
        "model_version": np.full(horizon, fitted.version if version is None else version, dtype=object),
    }
    for level in sorted(set(CONTRACT_LEVELS) | set(levels)):
        for side, bounds in (("lo", forecast.lower), ("hi", forecast.upper)):
            values = bounds.get(level) if level in levels else None
            rows[f"y_{side}_{level}"] = np.full(horizon, np.nan) if values is None else np.asarray(values, np.float64)[lag:]
    lower = {lv: None if b is None else np.asarray(b, np.float64)[lag:] for lv, b in forecast.lower.items()}
    upper = {lv: None if b is None else np.asarray(b, np.float64)[lag:] for lv, b in forecast.upper.items()}
    rows.update(quantiles_from_bands(mean, lower, upper))
    return rows


def _assemble(rows: list[dict[str, np.ndarray]], levels: tuple[int, ...]) -> pd.DataFrame:
    extra = [f"y_{s}_{lv}" for lv in sorted(set(levels) - set(CONTRACT_LEVELS)) for s in ("lo", "hi")]
    version = FORECAST_COLUMNS.index("model_version")
    columns = [*FORECAST_COLUMNS[:version], *extra, *FORECAST_COLUMNS[version:]]
    dtypes = {c: _COLUMN_DTYPES.get(c, "float64") for c in columns}
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=d) for c, d in dtypes.items()})
    return pd.DataFrame({c: np.concatenate([r[c] for r in rows]) for c in columns}).astype(dtypes)


def _history_for(history: pd.DataFrame, chunk: list[Unit], window: TrainingWindow, lag: int = 0) -> pd.DataFrame:
    """Only the rows a chunk's cutoffs can see, so workers are not sent the whole history."""
    data_ends = [c - pd.Timedelta(days=lag) for _, block in chunk for c in block]
    return history.loc[min(window.first_day(d) for d in data_ends) : max(data_ends)]
