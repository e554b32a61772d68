"""Model ``ensemble``: a combination of the production models' stored forecasts, per series.

Inputs are forecast-contract rows, so the ensemble needs nothing but what its members stored:

* the members' forecasts **at the cutoff** being combined (never from a later cutoff), and
* for weights, the members' earlier forecasts whose targets had matured by the cutoff
  (``ds <= cutoff``), scored against actuals up to the cutoff: no leakage. With a publication lag
  of N days (a backtest's ``--publication-lag``) the actuals are known up to ``cutoff - N`` only,
  and that is where matured targets end (and where a break must have been detected).

Methods: ``mean``, ``median`` and ``inverse_mae`` (weights ∝ 1 / a member's trailing MAE over the
last ``lookback_days`` days of matured targets, all horizons pooled; equal weights while a member
has fewer than ``min_scored`` scored forecasts). The method in production is chosen by the
backtest (docs/models-and-accuracy.md).

After a level shift of the series (a break detected by the cutoff, younger than ``regime_days``)
the weights follow the new regime instead: 1 / MAE ** ``regime_power`` over the forecasts made
since the detection, with the ``last_resort`` models (the seasonal naive) among the candidates,
and the ``re_anchoring`` members alone until enough of those forecasts are scored (see
:func:`member_weights`; measured on the 2020 shock in docs/models-and-accuracy.md).

Intervals: each bound is the same combination of the members' bounds (for the mean and the
weights, quantile averaging; for the median, the median bound), over the members that have the
interval; where a combined band does not contain the combined point forecast it is widened to do
so. The contract's quantiles (issue 21) are combined the same way: the 80 % and 95 % bands are
``q_100``/``q_900`` and ``q_025``/``q_975`` exactly as combined above (so those values did not
change), the 50 % and 90 % bands (``q_250``/``q_750``, ``q_050``/``q_950``) are each member's
combined and then clipped between their neighbours (the 50 % band inside the 80 % one and around
the point, the 90 % band between the 80 % and 95 % ones), so the quantiles stay monotone; the
median ``q_500`` is the combined point forecast wherever some quantile is present. Quantile averaging keeps a band as wide as its members' on average: it neither claims the
independence that would narrow it nor adds the members' disagreement, which is why the
backtest's coverage figures are the check.

``model_version`` names every member's version: ``ensemble[inverse_mae](sarimax=…;gbm=…)``.

Pure: frames in, frames out; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from schemas.forecasts import MEDIAN_COLUMN, QUANTILE_COLUMNS, interval_quantile_columns

MODEL_NAME = "ensemble"
METHODS = ("mean", "median", "inverse_mae")
BOUNDS = ("y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95")
OUTPUT_COLUMNS = ["unique_id", "cutoff", "ds", "h", "model", "y_hat", *BOUNDS, "model_version", *QUANTILE_COLUMNS]
_INNER_BANDS = {50: interval_quantile_columns(50), 90: interval_quantile_columns(90)}

Method = Literal["mean", "median", "inverse_mae"]


@dataclass(frozen=True)
class EnsembleSpec:
    members: tuple[str, ...]
    method: Method = "inverse_mae"
    lookback_days: int = 56
    min_scored: int = 28
    # After a level shift (a break) of the series, while the new regime is young:
    regime_days: int = 112
    regime_lookback_days: int = 28
    regime_min_scored: int = 3
    regime_power: float = 1.0
    last_resort: tuple[str, ...] = ("naive",)
    re_anchoring: tuple[str, ...] = ("ridge",)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown ensemble method {self.method!r}; known: {', '.join(METHODS)}")
        if not self.members:
            raise ValueError("an ensemble needs at least one member")


@dataclass(frozen=True)
class Break:
    """A series' level shift as the ensemble sees it: when the new level started, when it was
    detected (only forecasts made from then on knew of it)."""

    start: pd.Timestamp
    detected: pd.Timestamp


def member_weights(
    spec: EnsembleSpec, past: pd.DataFrame, actuals: pd.DataFrame, unique_id: str, cutoff: pd.Timestamp,
    latest: Break | None = None, publication_lag: int = 0,
) -> dict[str, float]:
    """Weights of the members for one series at one cutoff, summing to 1.

    ``past``: members' stored forecasts from earlier cutoffs (contract rows); only targets in
    ``(known - lookback_days, known]`` count, ``known`` = the cutoff less ``publication_lag`` days
    (the last actual published by then). ``actuals``: long rows ``unique_id, ds, y``. ``latest``: the series' latest level shift detected by the cutoff, if any. While that regime
    is younger than ``regime_days``, the weights come only from forecasts made since the break
    was detected, of targets in the last ``regime_lookback_days``; the ``last_resort`` members
    join, and weights are ∝ 1 / MAE ** ``regime_power``. Until ``regime_min_scored`` such
    forecasts are scored, the ``re_anchoring`` members (those that move to a detected new level
    by themselves) carry the ensemble: forecasts made before the detection say nothing about who
    tracks the new level, and the others still forecast the old one.
    """
    known = cutoff - pd.Timedelta(days=publication_lag)
    if latest is not None and cutoff - latest.start < pd.Timedelta(days=spec.regime_days):
        return _regime_weights(spec, past, actuals, unique_id, cutoff, known, latest)
    equal = {m: 1.0 / len(spec.members) for m in spec.members}
    if spec.method != "inverse_mae":
        return equal
    first = known - pd.Timedelta(days=spec.lookback_days)
    errors = _member_errors(past, actuals, unique_id, cutoff, known, first, spec.members)
    if any(m not in errors.index or errors.loc[m, "size"] < spec.min_scored for m in spec.members):
        return equal
    return _inverse(errors, spec.members, 1.0)


def regime_members(spec: EnsembleSpec) -> tuple[str, ...]:
    """Every model the ensemble may combine: its members, then the last-resort ones."""
    return (*spec.members, *(m for m in spec.last_resort if m not in spec.members))


def _regime_weights(
    spec: EnsembleSpec, past: pd.DataFrame, actuals: pd.DataFrame, unique_id: str, cutoff: pd.Timestamp,
    known: pd.Timestamp, latest: Break,
) -> dict[str, float]:
    candidates = regime_members(spec)
    first = max(known - pd.Timedelta(days=spec.regime_lookback_days), latest.start - pd.Timedelta(days=1))
    since_detection = past[past["cutoff"] >= latest.detected]
    errors = _member_errors(since_detection, actuals, unique_id, cutoff, known, first, candidates)
    scored = [m for m in candidates if m in errors.index and errors.loc[m, "size"] >= spec.regime_min_scored]
    if scored:
        return _inverse(errors, tuple(scored), spec.regime_power)
    leading = [m for m in spec.members if m in spec.re_anchoring] or list(spec.members)
    return {m: 1.0 / len(leading) for m in leading}


def _member_errors(
    past: pd.DataFrame, actuals: pd.DataFrame, unique_id: str, cutoff: pd.Timestamp, known: pd.Timestamp,
    first: pd.Timestamp, members: Sequence[str],
) -> pd.DataFrame:
    """Mean absolute error and count per member over targets in ``(first, known]`` of forecasts
    from cutoffs before ``cutoff``, scored against the actuals published by then (up to ``known``)."""
    rows = past[
        (past["unique_id"] == unique_id) & (past["ds"] > first) & (past["ds"] <= known) & (past["cutoff"] < cutoff)
        & past["model"].isin(members)
    ]  # fmt: skip
    scored = rows.merge(actuals[actuals["ds"] <= known], on=["unique_id", "ds"], how="inner")
    return (scored["y_hat"] - scored["y"]).abs().groupby(scored["model"]).agg(["mean", "size"])


def _inverse(errors: pd.DataFrame, members: Sequence[str], power: float) -> dict[str, float]:
    inverse = {m: 1.0 / max(float(errors.loc[m, "mean"]), 1.0) ** power for m in members}
    total = sum(inverse.values())
    return {m: w / total for m, w in inverse.items()}


def combine_at_cutoff(
    spec: EnsembleSpec, members: pd.DataFrame, weights: dict[str, float], unique_id: str, cutoff: pd.Timestamp
) -> pd.DataFrame:
    """The ensemble's rows for one series and cutoff from its members' rows at that cutoff.

    Members absent at this cutoff are left out (the weights of the others are renormalised and
    ``model_version`` names only those used); no member at all gives an empty frame."""
    # The members, and a last-resort model only where the regime rule gave it a weight.
    candidates = [m for m in regime_members(spec) if m in spec.members or weights.get(m, 0.0) > 0]
    rows = members[(members["unique_id"] == unique_id) & (members["cutoff"] == cutoff) & members["model"].isin(candidates)]
    present = [m for m in candidates if (rows["model"] == m).any()]
    if not present:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    by_model = {m: rows[rows["model"] == m].set_index("h").sort_index() for m in present}
    horizons = sorted(set.intersection(*(set(frame.index) for frame in by_model.values())))
    w = np.array([weights.get(m, 0.0) for m in present], dtype=float)
    w = w / w.sum() if w.sum() > 0 else np.full(len(present), 1.0 / len(present))

    def combined(column: str) -> np.ndarray:
        values = np.column_stack([by_model[m].loc[horizons, column].to_numpy(dtype=float) for m in present])
        if spec.method == "median":
            return np.nanmedian(values, axis=1) if np.isfinite(values).any(axis=1).all() else np.full(len(horizons), np.nan)
        have = np.isfinite(values)
        weight = np.where(have, w, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(have.any(axis=1), np.nansum(values * weight, axis=1) / weight.sum(axis=1), np.nan)

    y_hat = combined("y_hat")
    bounds = {column: combined(column) for column in BOUNDS}
    # np.minimum/maximum keep NaN: a band no member gave stays missing rather than collapsing.
    bounds["y_lo_80"], bounds["y_hi_80"] = np.minimum(bounds["y_lo_80"], y_hat), np.maximum(bounds["y_hi_80"], y_hat)
    bounds["y_lo_95"] = np.minimum(bounds["y_lo_95"], np.fmin(bounds["y_lo_80"], y_hat))
    bounds["y_hi_95"] = np.maximum(bounds["y_hi_95"], np.fmax(bounds["y_hi_80"], y_hat))
    quantiles = _combined_quantiles(combined, y_hat, bounds, by_model)
    first = by_model[present[0]].loc[horizons]
    versions = ";".join(f"{m}={by_model[m]['model_version'].iloc[0]}" for m in present)
    return pd.DataFrame(
        {
            "unique_id": unique_id, "cutoff": cutoff, "ds": first["ds"].to_numpy(), "h": np.asarray(horizons, dtype=np.int64),
            "model": MODEL_NAME, "y_hat": y_hat, **bounds, "model_version": f"{MODEL_NAME}[{spec.method}]({versions})",
            **quantiles,
        }
    )[OUTPUT_COLUMNS]


def _combined_quantiles(combined, y_hat: np.ndarray, bounds: dict[str, np.ndarray], by_model: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    """The contract's quantiles of the ensemble (module docstring): the 80/95 bands as combined,
    the 50/90 ones combined from the members that stored them (files written before the
    quantiles have none: NaN) and clipped between their neighbours."""
    nan = np.full(len(y_hat), np.nan)

    def member_combination(column: str) -> np.ndarray:
        return combined(column) if all(column in frame.columns for frame in by_model.values()) else nan

    lo50, hi50 = (member_combination(c) for c in _INNER_BANDS[50])
    lo90, hi90 = (member_combination(c) for c in _INNER_BANDS[90])
    # np.fmax/fmin let a missing neighbour leave the bound alone; a missing bound stays missing.
    lo80, hi80, lo95, hi95 = bounds["y_lo_80"], bounds["y_hi_80"], bounds["y_lo_95"], bounds["y_hi_95"]
    lo50 = np.where(np.isnan(lo50), np.nan, np.fmax(np.minimum(lo50, y_hat), np.fmax(lo80, lo95)))
    hi50 = np.where(np.isnan(hi50), np.nan, np.fmin(np.maximum(hi50, y_hat), np.fmin(hi80, hi95)))
    lo90 = np.where(np.isnan(lo90), np.nan, np.fmax(np.fmin(lo90, np.fmin(lo80, lo50)), lo95))
    hi90 = np.where(np.isnan(hi90), np.nan, np.fmin(np.fmax(hi90, np.fmax(hi80, hi50)), hi95))
    quantiles = {
        "q_025": lo95, "q_050": lo90, "q_100": lo80, "q_250": lo50, "q_750": hi50, "q_900": hi80, "q_950": hi90, "q_975": hi95,
    }
    present = np.column_stack(list(quantiles.values()))
    quantiles[MEDIAN_COLUMN] = np.where(np.isfinite(present).any(axis=1), y_hat, np.nan)
    return {c: np.asarray(quantiles[c], dtype=np.float64) for c in QUANTILE_COLUMNS}


def ensemble_forecasts(
    spec: EnsembleSpec, stored: pd.DataFrame, actuals: pd.DataFrame, series: Sequence[str], cutoffs: Sequence[pd.Timestamp],
    breaks: pd.DataFrame | None = None, publication_lag: int = 0,
) -> pd.DataFrame:
    """The ensemble for every series × cutoff. ``stored``: the members' (and last-resort models')
    contract rows with cutoffs from ``lookback_days + max h`` days before the first cutoff up to
    the last; ``actuals``: long ``unique_id, ds, y`` (only values up to each cutoff less
    ``publication_lag`` days are used); ``breaks``: level shifts as
    :func:`tasks.core.features.level_shifts.series_breaks` gives them (``unique_id, start,
    detected``); only those detected by then count at a cutoff."""
    members = stored[stored["model"].isin(regime_members(spec))]
    parts = []
    for cutoff in sorted(pd.Timestamp(c) for c in cutoffs):
        published = cutoff - pd.Timedelta(days=publication_lag)
        known = actuals[actuals["ds"] <= published]
        for unique_id in series:
            latest = latest_break(breaks, unique_id, published)
            weights = member_weights(spec, members, known, unique_id, cutoff, latest, publication_lag)
            parts.append(combine_at_cutoff(spec, members, weights, unique_id, cutoff))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    return pd.concat(parts, ignore_index=True)


def latest_break(breaks: pd.DataFrame | None, unique_id: str, cutoff: pd.Timestamp) -> Break | None:
    """The latest level shift of ``unique_id`` detected by ``cutoff`` (None: none)."""
    if breaks is None or breaks.empty:
        return None
    seen = breaks[(breaks["unique_id"] == unique_id) & (breaks["detected"] <= cutoff)]
    if seen.empty:
        return None
    row = seen.loc[seen["start"].idxmax()]
    return Break(start=pd.Timestamp(row["start"]), detected=pd.Timestamp(row["detected"]))
