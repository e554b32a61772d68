"""Multi-day forecasts from many cutoffs at once, and their scores per horizon.

Every architecture answers h = 1..H: sequence and vector models read their H outputs at the
window's last day; one-step models feed each prediction back as the next day's input. Inputs a
one-step model needs but does not predict are filled without looking past the cutoff: future
calendar inputs from the dates, and (``mulvar_rnn``) the other series by its latest value on a day
of the same day type at or before the cutoff.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from tasks.core.features.calendar import day_types
from tasks.core.models.rnn.config import SERIES_COLUMNS, ModelConfig
from tasks.core.models.rnn.windows import (
    Scaler,
    calendar_matrix,
    centred,
    feature_matrix,
    input_windows,
    last_index_of_each_day_type,
    require_daily,
    slice_days,
    target_levels,
    window_levels,
)


def use_xla_inference(network: keras.Model) -> keras.Model:
    """Run predictions XLA-compiled, whatever the training used.

    XLA compiles the same program for a trained network and for its reloaded copy, so their
    forecasts agree bitwise; TensorFlow's default graph path was measured to differ by one float32
    ulp between the two (different kernel choices), which would break "same model, same numbers".
    """
    if not network.jit_compile:
        network.jit_compile = True
        network.make_predict_function(force=True)
    return network


@dataclass(frozen=True)
class TrainedNetwork:
    """What forecasting needs: the network, its config, the series it forecasts, its scaler."""

    network: keras.Model
    config: ModelConfig
    unique_id: str
    scaler: Scaler


def forecast_paths(model: TrainedNetwork, frame: pd.DataFrame, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Forecasts in riders, shape (len(origins), horizon): row i uses days up to ``frame`` row origins[i]."""
    network, config, unique_id = model.network, model.config, model.unique_id
    require_daily(frame, config.series_columns(unique_id))
    origins = np.asarray(origins, dtype=int)
    if len(origins) == 0 or origins.min() < config.seq_length - 1 or origins.max() >= len(frame):
        raise ValueError(f"each cutoff needs {config.seq_length} days of history inside the frame")
    use_xla_inference(network)
    features = feature_matrix(frame, config, unique_id, model.scaler)
    windows = input_windows(features, config.seq_length)[origins - config.seq_length + 1]
    if config.spec.outputs != "one_step":
        if horizon > config.horizon:
            raise ValueError(f"{config.architecture} predicts {config.horizon} days, not {horizon}")
        outputs = np.asarray(network.predict_on_batch(windows))
        last_day = outputs[:, -1, :] if config.spec.outputs == "sequence" else outputs
        return model.scaler.to_riders(last_day[:, :horizon], unique_id)
    return _iterate_one_step(model, frame, features, windows, origins, horizon)


def _iterate_one_step(
    model: TrainedNetwork,
    frame: pd.DataFrame,
    features: np.ndarray,
    windows: np.ndarray,
    origins: np.ndarray,
    horizon: int,
) -> np.ndarray:
    network, config, unique_id = model.network, model.config, model.unique_id
    targets = config.target_columns(unique_id)
    paths = np.empty((len(origins), horizon), dtype=np.float64)
    origin_dates = frame.index[origins]
    latest_of_type = last_index_of_each_day_type(frame.index) if config.spec.inputs == "multivariate" else {}
    for step in range(1, horizon + 1):
        levels = window_levels(windows, config, unique_id)
        predicted = np.asarray(network.predict_on_batch(centred(windows, levels)), dtype=np.float32).reshape(len(origins), -1)
        if levels is not None:
            predicted = predicted + target_levels(levels, config, unique_id).astype(np.float32)
        paths[:, step - 1] = model.scaler.to_riders(predicted[:, targets.index(unique_id)], unique_id)
        if step == horizon:
            break
        day = origin_dates + pd.Timedelta(days=step)  # the day whose row is appended
        if config.spec.inputs == "univariate":
            row = predicted[:, [targets.index(unique_id)]]
        else:
            series = [
                predicted[:, targets.index(name)]
                if name in targets
                else _same_day_type_value(features[:, column], latest_of_type, origins, day)
                for column, name in enumerate(SERIES_COLUMNS)
            ]
            row = np.concatenate([np.stack(series, axis=1), calendar_matrix(day, config)], axis=1).astype(np.float32)
        windows = np.concatenate([windows[:, 1:], row[:, None, :]], axis=1)
    return paths


def _same_day_type_value(
    values: np.ndarray, latest_of_type: dict[str, np.ndarray], origins: np.ndarray, days: pd.DatetimeIndex
) -> np.ndarray:
    """Seasonal-naive stand-in for a series the model reads but does not predict."""
    types = day_types(days)
    positions = np.array([latest_of_type[code][origin] for code, origin in zip(types, origins)])
    positions = np.where(positions >= 0, positions, origins)
    return values[positions]


@dataclass(frozen=True)
class Evaluation:
    """Forecast errors per horizon over every cutoff of a validation span (riders)."""

    mae_by_h: tuple[float, ...]
    mape_by_h: tuple[float, ...]
    count_by_h: tuple[int, ...]
    residuals_by_h: tuple[np.ndarray, ...]  # actual - forecast, for interval quantiles

    @property
    def mae(self) -> float:
        """Mean of the per-horizon MAEs (h = 1..H): the number promotion compares."""
        return float(np.mean(self.mae_by_h))

    @property
    def mape(self) -> float:
        return float(np.mean(self.mape_by_h))

    def as_dict(self) -> dict[str, object]:
        return {
            "mae": self.mae,
            "mape": self.mape,
            "by_h": [
                {"h": h, "mae": mae, "mape": mape, "count": count}
                for h, (mae, mape, count) in enumerate(zip(self.mae_by_h, self.mape_by_h, self.count_by_h), start=1)
            ],
        }


def evaluate_network(
    model: TrainedNetwork,
    history: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    horizon: int,
    confine_inputs_to_span: bool = False,
) -> Evaluation:
    """Score h-day forecasts whose target days lie in [start, end]; horizon h uses every cutoff
    from start - 1 with cutoff + h <= end.

    By default input windows may reach back before ``start`` (into days the model trained on, as
    they always do in production): then every day of the span is a target, whatever the window
    length, so models with different ``seq_length`` (a champion and its challenger) are scored on
    the same days. ``confine_inputs_to_span=True`` reproduces the seed's validation set instead:
    windows lie wholly inside the span, so the first ``seq_length`` days are never targets.
    """
    config, unique_id = model.config, model.unique_id
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if confine_inputs_to_span:
        frame = slice_days(history, start, end)
        first_origin = config.seq_length - 1
    else:
        # One extra week of look-back serves mulvar_rnn's same-day-type stand-ins.
        lookback = pd.Timedelta(days=config.seq_length + 7)
        frame = history.loc[start - lookback : end]
        slice_days(frame, start, end)  # the span itself must be fully covered
        first_origin = max(config.seq_length - 1, int(frame.index.searchsorted(start)) - 1)
    origins = np.arange(first_origin, len(frame) - 1)
    if len(origins) == 0:
        raise ValueError(f"too few days before {end.date()} for {config.seq_length}-day windows")
    paths = forecast_paths(model, frame, origins, horizon)
    actual = frame[unique_id].to_numpy(dtype=np.float64)
    maes, mapes, counts, residuals = [], [], [], []
    for h in range(1, horizon + 1):
        usable = origins + h <= len(frame) - 1
        truth = actual[origins[usable] + h]
        error = truth - paths[usable, h - 1]
        maes.append(float(np.abs(error).mean()) if len(error) else float("nan"))
        mapes.append(float((np.abs(error) / np.abs(truth)).mean() * 100) if len(error) else float("nan"))
        counts.append(int(usable.sum()))
        residuals.append(error)
    return Evaluation(tuple(maes), tuple(mapes), tuple(counts), tuple(residuals))
