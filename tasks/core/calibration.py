"""Calibration of the forecast bands from the model's own matured walk-forward errors (issue 21).

Every model's bands come from its own assumptions (normal errors, training residuals, validation
residuals): in calm years ridge's 80 % band held 78 %, sarimax's 96 %; on rail in 2021 ridge's
held 67 %. Calibration rescales each forecast's bands so that the bands the model *issued*
before the cutoff hold their nominal share of the actuals that have matured since.

The rule is adaptive conformal inference (Gibbs & Candès 2021) in the integral form of conformal
PID control (Angelopoulos, Candès & Tibshirani 2023), on the scale of the model's own bands:

    q_L(c) = gain · Σ_e spacing_e · (miss_e − (1 − L/100)),

over the forecasts e of the same model and series issued before the cutoff c (cutoff_e < c) whose
target matured in the last ``lookback_days`` (c − lookback < ds_e ≤ c), where ``miss_e`` says
whether the actual fell outside the L % band *as issued* (calibrated, if it was) and ``spacing_e``
is the days between e's cutoff and the issued cutoff before it (1 in the nightly, 3 in a
backtest every 3 days; so the rule reacts per day, not per stored forecast). The forecast at c
keeps its median and each half-width of its L % band is multiplied by ``exp(q_L)``: a run of
misses widens the bands, a run of covered days narrows them, and a model whose bands hold L %
keeps them. The bands are then nested again (the 95 % band contains the 90 %, …). ``q`` is held
within ±log 5: a model that keeps missing by far more than its bands (a broken model, a shock)
gets bands at most five times wider, not as wide as its errors.

Chosen by backtest (docs/models-and-accuracy.md#calibration): split conformal quantiles of the
last 56-365 days' scores (per horizon or pooled) held 70-77 % for 80 % in 2019; this rule held
78-81 % on both series and both periods for every statistical model and the ensemble (and for
multitask_rnn since its level-free recipe; 68 % on rail in 2021 before), with one controller per (model, series,
level), pooled over the horizons (the model's bands carry the horizon's shape; per-horizon
controllers were worse on WIS).

**Transition misses are left out.** After a level shift detected by ``c`` (start ``s``, detected
``d ≤ c``; ``tasks/core/features/level_shifts.py``), the forecasts issued before ``d`` for targets
on or after ``s`` were made for the old level: they say how the old regime's forecasts fared, not
how wide this model's bands should be now. Counted, March 2020's misses held the offsets at their
bound for a year and the ensemble's 80 % band held 88 % of 2020-04-15..08-13 at a WIS 27 % above
what it is without them (docs/models-and-accuracy.md#calibration). They still count in the
spacing of the cutoffs. Detection finds no break in 2002-2019 or 2021, so calm years are
unchanged.

Leakage: only forecasts issued before ``c`` and actuals dated ``≤ c`` (``≤ c − lag`` with a
publication lag) enter ``q(c)``, and only breaks detected by then; later values cannot change it
(tested by perturbing them).

Pure: frames in and out; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from schemas.forecasts import MEDIAN_COLUMN, QUANTILE_LEVELS, interval_quantile_columns
from tasks.core.quantiles import distribution_columns

RAW_SUFFIX = "@raw"
"""The model-name suffix under which a calibrated model's bands as forecast are also stored."""

Method = Literal["aci", "none"]
CALIBRATION_METHODS: tuple[str, ...] = ("aci", "none")


@dataclass(frozen=True)
class CalibrationSpec:
    method: Method = "aci"
    gain: float = 0.01
    lookback_days: int = 365
    max_spacing_days: int = 7
    # Bands at most 5 times wider or narrower than forecast. Calm years stayed within
    # -1.7 .. +0.9; without a bound, a model that keeps missing by far widens its bands until
    # they cover its errors (multitask_rnn on rail in 2021, biased by 17,000 a day: 78 times its
    # own bands, its WIS doubled).
    max_offset: float = float(np.log(5.0))

    def __post_init__(self) -> None:
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(f"unknown calibration {self.method!r}; choose from {', '.join(CALIBRATION_METHODS)}")
        if self.gain <= 0 or self.lookback_days < 1 or self.max_spacing_days < 1 or self.max_offset <= 0:
            raise ValueError("calibration gain, lookback, spacing and offset bound must be positive")


def raw_name(model: str) -> str:
    return f"{model}{RAW_SUFFIX}"


def is_raw(model: str) -> bool:
    return model.endswith(RAW_SUFFIX)


def band_levels(frame: pd.DataFrame) -> list[int]:
    """The central-interval levels whose bounds ``frame`` carries: the quantiles' and any ``y_lo_L``."""
    extra = {int(c.removeprefix("y_lo_")) for c in frame.columns if c.startswith("y_lo_")}
    return sorted(set(QUANTILE_LEVELS) | extra)


def _bounds(frame: pd.DataFrame, level: int) -> tuple[np.ndarray, np.ndarray]:
    """A level's bounds: ``y_lo_L``/``y_hi_L`` where present, else its quantile columns."""
    low, high = interval_quantile_columns(level)
    for lo_col, hi_col in ((f"y_lo_{level}", f"y_hi_{level}"), (low, high)):
        if lo_col in frame.columns:
            lo, hi = frame[lo_col].to_numpy(np.float64), frame[hi_col].to_numpy(np.float64)
            if np.isfinite(lo).any():
                return lo, hi
    return np.full(len(frame), np.nan), np.full(len(frame), np.nan)


def band_offsets(
    issued: pd.DataFrame, actuals: pd.Series, cutoff: pd.Timestamp, spec: CalibrationSpec, data_end: pd.Timestamp | None = None,
    breaks: pd.DataFrame | None = None,
) -> dict[int, float]:
    """``q_L(cutoff)`` per level (module docstring) from one (model, series)'s ``issued`` rows.

    ``actuals``: the series' values indexed by date; only those dated ``≤ data_end`` (default the
    cutoff) and only rows issued before ``cutoff`` count. ``breaks``: the series' level shifts
    (``start``, ``detected``); the transition misses of those detected by ``data_end`` are left out."""
    data_end = cutoff if data_end is None else data_end
    first = cutoff - pd.Timedelta(days=spec.lookback_days)
    known = actuals.loc[:data_end].dropna()
    rows = issued[(issued["cutoff"] < cutoff) & (issued["ds"] > first) & (issued["ds"] <= data_end)]
    y = known.reindex(pd.DatetimeIndex(rows["ds"])).to_numpy(np.float64, copy=True)
    y[_in_transition(rows, breaks, data_end)] = np.nan  # not scored
    weights = spec.gain * _spacing(issued["cutoff"][issued["cutoff"] < cutoff], rows["cutoff"], spec.max_spacing_days)
    offsets = {}
    for level in band_levels(issued):
        lo, hi = _bounds(rows, level)
        scored = np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi)
        miss = (y < lo) | (y > hi)
        total = float(np.sum(weights[scored] * (miss[scored] - (1.0 - level / 100.0))))
        offsets[level] = float(np.clip(total, -spec.max_offset, spec.max_offset))
    return offsets


def _in_transition(rows: pd.DataFrame, breaks: pd.DataFrame | None, data_end: pd.Timestamp) -> np.ndarray:
    """Rows issued before a break's detection (by ``data_end``) for a target on or after its start."""
    out = np.zeros(len(rows), dtype=bool)
    if breaks is None or breaks.empty:
        return out
    known = breaks[pd.to_datetime(breaks["detected"]) <= data_end]
    for start, detected in zip(pd.to_datetime(known["start"]), pd.to_datetime(known["detected"])):
        out |= ((rows["cutoff"] < detected) & (rows["ds"] >= start)).to_numpy()
    return out


def _spacing(issued_cutoffs: pd.Series, row_cutoffs: pd.Series, cap: int) -> np.ndarray:
    """Days from each row's cutoff to the issued cutoff before it (capped; the first one gets
    the median gap, or 1 when there is a single cutoff)."""
    days = pd.DatetimeIndex(sorted(set(issued_cutoffs)))
    if len(days) == 0:
        return np.zeros(len(row_cutoffs))
    gaps = (days[1:] - days[:-1]) / pd.Timedelta(days=1)
    first_gap = float(np.median(gaps)) if len(gaps) else 1.0
    gap_of = pd.Series(np.minimum(np.concatenate([[first_gap], np.asarray(gaps, np.float64)]), cap), index=days)
    return gap_of.reindex(pd.DatetimeIndex(row_cutoffs)).to_numpy(np.float64)


def apply_offsets(rows: pd.DataFrame, offsets: dict[int, float]) -> pd.DataFrame:
    """``rows`` with each level's half-widths around the median times ``exp(q_L)``, nested again,
    every bound column of the level (``y_lo_L``/``y_hi_L`` and the quantiles) set. Levels
    without bands stay NaN; ``model_version`` stays the model's (the registry's id). Returns a copy."""
    out = rows.copy()
    median = rows["y_hat"].to_numpy(np.float64)
    below, above = median.copy(), median.copy()  # the inner level's bounds, for nesting
    for level in sorted(offsets):
        lo, hi = _bounds(rows, level)
        scale = np.exp(offsets[level])
        lo, hi = median - (median - lo) * scale, median + (hi - median) * scale
        lo = np.where(np.isfinite(lo), np.minimum(lo, below), np.nan)
        hi = np.where(np.isfinite(hi), np.maximum(hi, above), np.nan)
        below, above = np.where(np.isfinite(lo), lo, below), np.where(np.isfinite(hi), hi, above)
        for lo_col, hi_col in ((f"y_lo_{level}", f"y_hi_{level}"), interval_quantile_columns(level)):
            if lo_col in out.columns:
                out[lo_col], out[hi_col] = lo, hi
    if MEDIAN_COLUMN in out.columns:
        out[MEDIAN_COLUMN] = np.where(np.isfinite(out[MEDIAN_COLUMN].to_numpy(np.float64)), median, np.nan)
    return out


def calibrate_pending(
    stored: pd.DataFrame, actuals: pd.DataFrame, cutoffs: Sequence[pd.Timestamp], spec: CalibrationSpec, publication_lag: int = 0,
    breaks: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Calibrate one model's forecasts at ``cutoffs`` that are not calibrated yet, in cutoff order
    per series (a cutoff sees the earlier cutoffs' bands as calibrated here).

    ``stored``: the model's issued forecasts as stored, and its ``<model>@raw`` rows where there
    are any. A forecast is calibrated when its ``@raw`` twin has the same ``y_hat`` and other
    bands (:func:`needs_calibration`); otherwise it is calibrated from the twin when their
    ``y_hat`` agree (a run stopped between writing the twin and the calibrated rows) or from
    itself. ``actuals``: long ``unique_id, ds, y``. With ``publication_lag`` N the forecast at c
    counts only actuals dated ≤ c − N (what it knew). ``breaks``: ``unique_id, start, detected``
    of the level shifts (:func:`tasks.core.features.level_shifts.series_breaks`), whose transition
    misses are left out. Returns the calibrated rows and, for each, the bands as forecast under
    ``<model>@raw``; both empty when nothing is pending."""
    raw_rows = stored["model"].astype(str).map(is_raw)
    issued_all, twins = stored[~raw_rows], stored[raw_rows]
    if issued_all.empty or spec.method == "none":
        return issued_all.iloc[:0], issued_all.iloc[:0]
    wanted = set(pd.DatetimeIndex(cutoffs))
    calibrated, sources = [], []
    for unique_id, issued in issued_all.groupby("unique_id", sort=True, observed=True):
        issued = issued.sort_values(["cutoff", "h"]).reset_index(drop=True)
        twin = _aligned(twins[twins["unique_id"] == unique_id], issued)
        series = actuals.loc[actuals["unique_id"] == unique_id].set_index("ds")["y"].sort_index()
        series_breaks = None if breaks is None else breaks[breaks["unique_id"] == unique_id]
        pending = issued["cutoff"].isin(wanted) & needs_calibration(issued, twin)
        # A cutoff is calibrated and written whole: the store replaces a (cutoff, model, series)
        # file, so writing only the rows forecast anew (a horizon whose point moved) dropped the others.
        pending = pending.groupby(issued["cutoff"]).transform("any")
        source, from_twin = _with_twin_bands(issued, twin)
        for cutoff in sorted(issued.loc[pending, "cutoff"].unique()):
            cutoff = pd.Timestamp(cutoff)
            at = pending & (issued["cutoff"] == cutoff)
            data_end = cutoff - pd.Timedelta(days=publication_lag)
            done = apply_offsets(source[at], band_offsets(issued, series, cutoff, spec, data_end, series_breaks))
            columns = distribution_columns(done, include_point=False)
            unchanged = (from_twin[at.to_numpy()] & _same(done[columns], issued.loc[at, columns])).all()
            issued.loc[at, columns] = done[columns].to_numpy()
            # Stored already as it would be (a cutoff with nothing matured, its offsets 0): no
            # rewrite; otherwise every row of the cutoff, for the reason above.
            if not unchanged:
                calibrated.append(done)
                sources.append(source[at])
    if not calibrated:
        return issued_all.iloc[:0], issued_all.iloc[:0]
    raw = pd.concat(sources, ignore_index=True)
    raw["model"] = raw["model"].astype(str).map(raw_name)
    return pd.concat(calibrated, ignore_index=True), raw


def needs_calibration(issued: pd.DataFrame, twin: pd.DataFrame) -> pd.Series:
    """Per row of ``issued``: not calibrated yet. Calibrated means an ``@raw`` twin (``twin``,
    aligned row by row, NaN where none, :func:`_aligned`) with the same ``y_hat`` and different
    bands: a row without a twin was never calibrated, one whose twin has another ``y_hat`` or
    another version (:func:`_aligned` drops it) was forecast again since, and one equal to its
    twin is raw (or calibrated with every offset 0, which redoing leaves as it is)."""
    same_point = issued["y_hat"].to_numpy(np.float64) == twin["y_hat"].to_numpy(np.float64)
    columns = distribution_columns(issued, include_point=False)
    return pd.Series(~same_point | _same(issued[columns], twin[columns]), index=issued.index)


def bands_as_forecast(stored: pd.DataFrame) -> pd.DataFrame:
    """``stored`` without its ``@raw`` rows, each model's row carrying the bands it was forecast
    with: its twin's where it has one of the same point and version (it was calibrated since),
    its own otherwise. What a model combining others' forecasts (the ensemble) reads: its result
    must not depend on whether its members were calibrated before it ran (a rerun of the
    ensemble alone) or after (the run that forecast them)."""
    raw_rows = stored["model"].astype(str).map(is_raw).to_numpy()
    issued_all, twins = stored[~raw_rows], stored[raw_rows]
    if twins.empty:
        return issued_all
    twin_model = twins["model"].astype(str).str.removesuffix(RAW_SUFFIX)
    parts = []
    for (model, unique_id), issued in issued_all.groupby([issued_all["model"].astype(str), "unique_id"], sort=False, observed=True):
        twin = _aligned(twins[(twin_model == model).to_numpy() & (twins["unique_id"] == unique_id).to_numpy()], issued)
        parts.append(_with_twin_bands(issued, twin)[0])
    return pd.concat(parts).loc[issued_all.index]


def _with_twin_bands(issued: pd.DataFrame, twin: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """A copy of ``issued`` with the bands and quantiles of its aligned ``twin`` where the twin
    has the same point (the bands as forecast), and which rows those are."""
    from_twin = twin["y_hat"].to_numpy(np.float64) == issued["y_hat"].to_numpy(np.float64)
    source = issued.copy()
    for column in distribution_columns(issued, include_point=False):
        source.loc[from_twin, column] = twin.loc[from_twin, column].to_numpy(np.float64)
    return source, from_twin


def _same(left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    """Per row: every value equal (NaN equal to NaN)."""
    a, b = left.to_numpy(np.float64), right.to_numpy(np.float64)
    return ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)


def _aligned(twins: pd.DataFrame, issued: pd.DataFrame) -> pd.DataFrame:
    """``twins`` reordered to ``issued``'s (cutoff, h) rows; NaN rows where there is no twin,
    or where the twin lacks a band or quantile the issued row has: the bands as forecast by an
    earlier version (before the contract's quantiles), since forecast again and overwritten.
    Taken for a twin, it made those rows look calibrated, and they were left raw. Likewise a twin
    of another ``model_version``: a forecast made again by a changed model (or an ensemble of
    changed members) can keep its point where its bands moved, and looked calibrated."""
    keyed = twins.drop_duplicates(["cutoff", "h"]).set_index(["cutoff", "h"])
    index = pd.MultiIndex.from_frame(issued[["cutoff", "h"]])
    aligned = keyed.reindex(index).reset_index().set_index(issued.index)
    columns = [c for c in distribution_columns(issued, include_point=False) if c in aligned.columns]
    stale = (aligned[columns].isna().to_numpy() & issued[columns].notna().to_numpy()).any(axis=1)
    if "model_version" in issued.columns and "model_version" in aligned.columns:
        stale |= (aligned["model_version"].astype(object) != issued["model_version"].astype(object)).to_numpy()
    aligned.loc[stale, aligned.columns.difference(["cutoff", "h"])] = np.nan
    return aligned
