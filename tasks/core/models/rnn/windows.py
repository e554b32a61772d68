"""Model inputs as plain numpy arrays, built once per training instead of by tf.data window ops.

Calendar inputs (day types, :func:`tasks.core.features.calendar_flags.calendar_features` flags) always
come from the dates themselves, so those of the days after the cutoff are known without reading
any row after it (the seed's ``day_type.shift(-1)`` would read the next day type from the future row).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from tasks.core.features.calendar import day_types
from tasks.core.features.calendar_flags import calendar_features
from tasks.core.models.rnn.config import NEXT_DAY_TYPES, SERIES_COLUMNS, ModelConfig

ONE_DAY = pd.Timedelta(days=1)


def require_daily(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Windows assume one row per consecutive day and finite values: fail loudly otherwise."""
    if not isinstance(frame.index, pd.DatetimeIndex) or len(frame) == 0:
        raise ValueError("history must be indexed by a non-empty daily DatetimeIndex")
    steps = np.diff(frame.index.values).astype("timedelta64[D]").astype(int)
    if len(steps) and (steps != 1).any():
        gap = frame.index[1:][steps != 1][0]
        raise ValueError(f"history is not one row per consecutive day (irregular step before {gap.date()})")
    values = frame.loc[:, list(columns)].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError(f"history has missing or non-finite values in {columns}")


def next_day_one_hot(dates: pd.DatetimeIndex) -> np.ndarray:
    """One-hot (A, U, W) of the day type of the day after each date, from the calendar."""
    following = day_types(pd.DatetimeIndex(dates) + ONE_DAY)
    return np.stack([following == code for code in NEXT_DAY_TYPES], axis=1).astype(np.float32)


def day_calendar(days: pd.DatetimeIndex, flags: tuple[str, ...]) -> np.ndarray:
    """(days, 3 + flags): the one-hot day type (A, U, W) and the given calendar flags of each date."""
    days = pd.DatetimeIndex(days)
    features = calendar_features(days)
    missing = [flag for flag in flags if flag not in features.columns]
    if missing:
        # A model must read exactly the flags it was trained on; guessing a stand-in would be silent.
        raise ValueError(
            f"the model was trained with calendar flags {missing} that calendar_features no longer provides: retrain it"
        )
    types = day_types(days)
    one_hot = np.stack([types == code for code in NEXT_DAY_TYPES], axis=1)
    return np.concatenate([one_hot, features[list(flags)].to_numpy()], axis=1).astype(np.float32)


def calendar_matrix(dates: pd.DatetimeIndex, config: ModelConfig) -> np.ndarray:
    """(dates, calendar inputs) float32: for each input date, the calendar of the days after it
    that ``config`` reads (see :attr:`ModelConfig.calendar_columns` for the order)."""
    dates = pd.DatetimeIndex(dates)
    if config.calendar == "next_day_type":
        return next_day_one_hot(dates)
    blocks = [day_calendar(dates + lead * ONE_DAY, config.calendar_flags) for lead in range(1, config.calendar_lead_days + 1)]
    return np.concatenate(blocks, axis=1)


@dataclass(frozen=True)
class Scaler:
    """Riders <-> model units, per series: ``units = (riders - center) / scale``, or with ``log``
    ``units = (log riders - center) / scale``.

    One scaler serves inputs and targets alike, so a one-step model's prediction can be fed back
    as the next day's input unchanged. (``window_log`` models also centre each window on its own
    mean: :func:`window_levels`.)
    """

    center: Mapping[str, float]
    scale: Mapping[str, float]
    log: bool = False

    @classmethod
    def for_training(cls, config: ModelConfig, train_frame: pd.DataFrame) -> "Scaler":
        if config.scaling == "fixed":
            return cls({c: 0.0 for c in SERIES_COLUMNS}, {c: config.scale for c in SERIES_COLUMNS})
        columns = [c for c in SERIES_COLUMNS if c in train_frame.columns]
        values = train_frame[columns].to_numpy(dtype=np.float64)
        if config.scaling == "window_log":
            # Scale: the spread of a day around the mean of the window before it, the size of what
            # the network sees once each window is centred. Centre: the training days' mean log,
            # which the windows' centring removes again; it keeps float32 units small and exact.
            logs = pd.DataFrame(_log(values))
            spread = (logs - logs.rolling(config.seq_length).mean().shift(1)).std().to_numpy()
            return cls(dict(zip(columns, logs.mean().tolist())), dict(zip(columns, spread.tolist())), log=True)
        return cls(dict(zip(columns, values.mean(axis=0).tolist())), dict(zip(columns, values.std(axis=0).tolist())))

    def to_model(self, values: np.ndarray, columns: tuple[str, ...]) -> np.ndarray:
        center = np.array([self.center[c] for c in columns])
        scale = np.array([self.scale[c] for c in columns])
        values = np.asarray(values, dtype=np.float64)
        return (((_log(values) if self.log else values) - center) / scale).astype(np.float32)

    def to_riders(self, values: np.ndarray, column: str) -> np.ndarray:
        units = np.asarray(values, dtype=np.float64) * self.scale[column] + self.center[column]
        if not self.log:
            return units
        with np.errstate(over="ignore"):  # a broken network's output stays inf: the fallback's cue
            return np.exp(units)

    def as_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"center": dict(self.center), "scale": dict(self.scale)}
        if self.log:  # cards of the other scalings keep their layout
            payload["log"] = True
        return payload

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> "Scaler":
        return cls(dict(payload["center"]), dict(payload["scale"]), bool(payload.get("log", False)))


def _log(values: np.ndarray) -> np.ndarray:
    # Ridership below one rider a day does not occur in the totals; the floor keeps a bad row finite.
    return np.log(np.maximum(values, 1.0))


def window_levels(windows: np.ndarray, config: ModelConfig, unique_id: str) -> np.ndarray | None:
    """(windows, series inputs): each window's mean of each series input, in model units, for a
    ``window_log`` model (None for the other scalings, which keep their levels)."""
    if config.scaling != "window_log":
        return None
    return windows[:, :, : len(config.series_columns(unique_id))].mean(axis=1)


def centred(windows: np.ndarray, levels: np.ndarray | None) -> np.ndarray:
    """``windows`` with each series input minus its window's level (unchanged without levels)."""
    if levels is None:
        return windows
    out = np.array(windows, dtype=np.float32, copy=True)
    out[:, :, : levels.shape[1]] -= levels[:, None, :].astype(np.float32)
    return out


def target_levels(levels: np.ndarray, config: ModelConfig, unique_id: str) -> np.ndarray:
    """The columns of ``levels`` (one per series input) that belong to the model's targets."""
    inputs = config.series_columns(unique_id)
    return levels[:, [inputs.index(name) for name in config.target_columns(unique_id)]]


def feature_matrix(frame: pd.DataFrame, config: ModelConfig, unique_id: str, scaler: Scaler) -> np.ndarray:
    """(days, features) float32 inputs in model units."""
    columns = config.series_columns(unique_id)
    series = scaler.to_model(frame[list(columns)].to_numpy(dtype=np.float64), columns)
    if config.spec.inputs == "univariate":
        return series
    return np.concatenate([series, calendar_matrix(frame.index, config)], axis=1)


def target_matrix(frame: pd.DataFrame, config: ModelConfig, unique_id: str, scaler: Scaler) -> np.ndarray:
    """(days, targets) float32 targets in model units."""
    columns = config.target_columns(unique_id)
    return scaler.to_model(frame[list(columns)].to_numpy(dtype=np.float64), columns)


def input_windows(features: np.ndarray, seq_length: int) -> np.ndarray:
    """All windows of ``seq_length`` consecutive days, (days - seq_length + 1, seq_length, features),
    as a read-only view: index it to copy only the windows needed."""
    return sliding_window_view(features, seq_length, axis=0).transpose(0, 2, 1)


def supervised_windows(
    frame: pd.DataFrame, config: ModelConfig, unique_id: str, scaler: Scaler
) -> tuple[np.ndarray, np.ndarray]:
    """Training pairs (X, Y) from one contiguous span; every target lies inside the span.

    one_step: X = days i..i+L-1, Y = day i+L (all targets);
    vector:   Y = days i+L..i+L+H-1 of the series;
    sequence: Y[t, k] = day i+t+1+k for each window day t (the seed's seq2seq layout), restricted
              to the days the model emits outputs for (conv_gru: every second day).
    """
    require_daily(frame, tuple(dict.fromkeys(config.series_columns(unique_id) + config.target_columns(unique_id))))
    features = feature_matrix(frame, config, unique_id, scaler)
    targets = target_matrix(frame, config, unique_id, scaler)
    length, horizon, days = config.seq_length, config.horizon, len(frame)
    kind = config.spec.outputs
    count = days - length if kind == "one_step" else days - length - horizon + 1
    if count < 1:
        raise ValueError(f"{days} days are too few for windows of {length} days (+{horizon} ahead)")
    inputs = np.ascontiguousarray(input_windows(features, length)[:count])
    if kind == "one_step":
        levels = window_levels(inputs, config, unique_id)
        following = targets[length : length + count]
        if levels is not None:
            following = following - target_levels(levels, config, unique_id).astype(np.float32)
        return centred(inputs, levels), np.ascontiguousarray(following)
    series = targets[:, 0]
    ahead = sliding_window_view(series, horizon)  # ahead[j] = days j..j+H-1
    if kind == "vector":
        return inputs, np.ascontiguousarray(ahead[length : length + count])
    step_targets = sliding_window_view(ahead[1:], length, axis=0).transpose(0, 2, 1)[:count]
    return inputs, np.ascontiguousarray(step_targets[:, config.output_steps(), :])


def slice_days(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Rows from ``start`` to ``end`` inclusive, refusing a span the history does not fully cover."""
    if frame.index[0] > start or frame.index[-1] < end:
        raise ValueError(
            f"history {frame.index[0].date()}..{frame.index[-1].date()} does not cover {start.date()}..{end.date()}"
        )
    return frame.loc[start:end]


def data_fingerprint(frame: pd.DataFrame, columns: tuple[str, ...]) -> str:
    """sha256 of the dates and values a model was trained on: same data, same fingerprint."""
    digest = hashlib.sha256()
    digest.update(np.asarray(frame.index.values, dtype="datetime64[D]").tobytes())
    digest.update(np.ascontiguousarray(frame.loc[:, list(columns)].to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()


def last_index_of_each_day_type(dates: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """For each day type, the position of its latest occurrence at or before each row (-1: none yet)."""
    types = day_types(dates)
    positions = np.arange(len(dates))
    return {code: np.maximum.accumulate(np.where(types == code, positions, -1)) for code in ("W", "A", "U")}
