"""Model ``ensemble``: a combination of the production models' stored forecasts, per series.

Inputs are forecast-contract rows, so the ensemble needs nothing but what its members stored:

* the members' forecasts **at the cutoff** being combined (never from a later cutoff), and
* for weights, the members' earlier forecasts whose targets had matured by the cutoff
  (``ds <= cutoff``), scored against actuals up to the cutoff: no leakage. With a publication lag
  of N days (a backtest's ``--publication-lag``) the actuals are known up to ``cutoff - N`` only,
  and that is where matured targets end.

Methods: ``mean``, ``median`` and ``inverse_mae`` (weights ∝ 1 / a member's trailing MAE over the
last ``lookback_days`` days of matured targets, all horizons pooled; equal weights while a member
has fewer than ``min_scored`` scored forecasts). The method in production is chosen by the
backtest (README).

Intervals: each bound is the same combination of the members' bounds (for the mean and the
weights, quantile averaging; for the median, the median bound), over the members that have the
interval; where a combined band does not contain the combined point forecast it is widened to do
so. Quantile averaging keeps a band as wide as its members' on average: it neither claims the
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

MODEL_NAME = "ensemble"
METHODS = ("mean", "median", "inverse_mae")
BOUNDS = ("y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95")
OUTPUT_COLUMNS = ["unique_id", "cutoff", "ds", "h", "model", "y_hat", *BOUNDS, "model_version"]

Method = Literal["mean", "median", "inverse_mae"]


@dataclass(frozen=True)
class EnsembleSpec:
    members: tuple[str, ...]
    method: Method = "inverse_mae"
    lookback_days: int = 56
    min_scored: int = 28

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown ensemble method {self.method!r}; known: {', '.join(METHODS)}")
        if not self.members:
            raise ValueError("an ensemble needs at least one member")


def member_weights(
    spec: EnsembleSpec, past: pd.DataFrame, actuals: pd.DataFrame, unique_id: str, cutoff: pd.Timestamp,
    publication_lag: int = 0,
) -> dict[str, float]:
    """Weights of the members for one series at one cutoff, summing to 1.

    ``past``: members' stored forecasts from earlier cutoffs (contract rows); only targets in
    ``(known - lookback_days, known]`` count, ``known`` = the cutoff less ``publication_lag`` days
    (the last actual published by then). ``actuals``: long rows ``unique_id, ds, y``.
    """
    equal = {m: 1.0 / len(spec.members) for m in spec.members}
    if spec.method != "inverse_mae":
        return equal
    known = cutoff - pd.Timedelta(days=publication_lag)
    first = known - pd.Timedelta(days=spec.lookback_days)
    rows = past[(past["unique_id"] == unique_id) & (past["ds"] > first) & (past["ds"] <= known) & (past["cutoff"] < cutoff)]
    scored = rows.merge(actuals[actuals["ds"] <= known], on=["unique_id", "ds"], how="inner")
    errors = (scored["y_hat"] - scored["y"]).abs().groupby(scored["model"]).agg(["mean", "size"])
    if any(m not in errors.index or errors.loc[m, "size"] < spec.min_scored for m in spec.members):
        return equal
    inverse = {m: 1.0 / max(float(errors.loc[m, "mean"]), 1.0) for m in spec.members}
    total = sum(inverse.values())
    return {m: w / total for m, w in inverse.items()}


def combine_at_cutoff(
    spec: EnsembleSpec, members: pd.DataFrame, weights: dict[str, float], unique_id: str, cutoff: pd.Timestamp
) -> pd.DataFrame:
    """The ensemble's rows for one series and cutoff from its members' rows at that cutoff.

    Members absent at this cutoff are left out (the weights of the others are renormalised and
    ``model_version`` names only those used); no member at all gives an empty frame."""
    rows = members[(members["unique_id"] == unique_id) & (members["cutoff"] == cutoff) & members["model"].isin(spec.members)]
    present = [m for m in spec.members if (rows["model"] == m).any()]
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
    first = by_model[present[0]].loc[horizons]
    versions = ";".join(f"{m}={by_model[m]['model_version'].iloc[0]}" for m in present)
    return pd.DataFrame(
        {
            "unique_id": unique_id, "cutoff": cutoff, "ds": first["ds"].to_numpy(), "h": np.asarray(horizons, dtype=np.int64),
            "model": MODEL_NAME, "y_hat": y_hat, **bounds, "model_version": f"{MODEL_NAME}[{spec.method}]({versions})",
        }
    )[OUTPUT_COLUMNS]


def ensemble_forecasts(
    spec: EnsembleSpec, stored: pd.DataFrame, actuals: pd.DataFrame, series: Sequence[str], cutoffs: Sequence[pd.Timestamp],
    publication_lag: int = 0,
) -> pd.DataFrame:
    """The ensemble for every series × cutoff. ``stored``: the members' contract rows with cutoffs
    from ``lookback_days + max h`` days before the first cutoff up to the last; ``actuals``: long
    ``unique_id, ds, y`` (only values up to each cutoff less ``publication_lag`` days are used)."""
    members = stored[stored["model"].isin(spec.members)]
    parts = []
    for cutoff in sorted(pd.Timestamp(c) for c in cutoffs):
        known = actuals[actuals["ds"] <= cutoff - pd.Timedelta(days=publication_lag)]
        for unique_id in series:
            weights = member_weights(spec, members, known, unique_id, cutoff, publication_lag)
            parts.append(combine_at_cutoff(spec, members, weights, unique_id, cutoff))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    return pd.concat(parts, ignore_index=True)
