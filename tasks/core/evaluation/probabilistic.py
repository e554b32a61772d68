"""Proper scores of forecast distributions: pinball loss, the weighted interval score, coverage,
interval width and skill against the seasonal naive (issue 21).

Definitions, for one forecast with actual ``y``:

* **Pinball loss** of the quantile ``q`` at level τ: ``ρ_τ(y, q) = max(τ (y - q), (τ - 1)(y - q))``
  (the loss whose expectation the true τ-quantile minimises).
* **Interval score** of the central (1 - α) interval ``[l, u]`` (Gneiting & Raftery 2007):
  ``IS_α = (u - l) + (2/α)(l - y) 1{y < l} + (2/α)(y - u) 1{y > u}``: its width plus a penalty
  for the actual falling outside, steeper for a wider nominal interval.
* **Weighted interval score** (Bracher, Ray, Gneiting & Reich 2021, PLOS Comput. Biol. 17(2)
  e1008618), with K central intervals at levels (1 - α_k) and the median m::

      WIS = 1 / (K + 1/2) · ( w_0 · |y - m| + Σ_{k=1..K} w_k · IS_{α_k} ),  w_0 = 1/2,  w_k = α_k / 2.

  The contract's intervals are 50, 80, 90 and 95 % (α = 0.5, 0.2, 0.1, 0.05; K = 4), whose
  bounds with the median are its nine quantiles.
* **The identity used as a check**: ``(α/2) · IS_α = ρ_{α/2}(y, l) + ρ_{1-α/2}(y, u)`` and
  ``|y - m| / 2 = ρ_{1/2}(y, m)``, so with those weights
  ``WIS = 1/(K + 1/2) · Σ_j ρ_{τ_j}(y, q_j)`` over the 2K + 1 quantiles, that is
  **WIS = 2 × the mean pinball loss over the 2K + 1 quantiles** (here nine). WIS is in the unit
  of the series (boardings), approximates the CRPS, and is 0 only for a point mass on the actual.
* **Skill** against the seasonal naive: ``1 - Σ WIS(model) / Σ WIS(naive)`` over the targets
  both forecast from the same cutoff at the same horizon (so both are scored on the same
  days); above 0 beats the naive, 1 would be perfect.

Pure: arrays and frames in and out; no I/O.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from schemas.forecasts import QUANTILE_COLUMNS, QUANTILE_LEVELS, QUANTILES, interval_quantile_columns

PINBALL_COLUMNS = tuple(f"pinball_{c.removeprefix('q_')}" for c in QUANTILE_COLUMNS)
"""The metrics table's per-quantile pinball columns: ``pinball_025 .. pinball_975``."""

COVERAGE_LEVELS = (50, 80, 90, 95)
WIDTH_LEVELS = (80, 95)


def pinball_loss(y: np.ndarray, quantile: np.ndarray, tau: float) -> np.ndarray:
    """``ρ_τ(y, q)`` elementwise (module docstring); NaN where ``y`` or ``q`` is."""
    if not 0.0 < tau < 1.0:
        raise ValueError(f"a quantile level is strictly between 0 and 1, got {tau}")
    diff = np.asarray(y, dtype=np.float64) - np.asarray(quantile, dtype=np.float64)
    return np.maximum(tau * diff, (tau - 1.0) * diff)


def interval_score(y: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: int) -> np.ndarray:
    """``IS_α`` of the central ``level`` % interval (α = 1 - level/100), elementwise."""
    alpha = 1.0 - level / 100.0
    y, lower, upper = (np.asarray(a, dtype=np.float64) for a in (y, lower, upper))
    below = np.where(y < lower, lower - y, 0.0)
    above = np.where(y > upper, y - upper, 0.0)
    return (upper - lower) + (2.0 / alpha) * (below + above)


def weighted_interval_score(
    y: np.ndarray, median: np.ndarray, lower: Mapping[int, np.ndarray], upper: Mapping[int, np.ndarray]
) -> np.ndarray:
    """WIS (module docstring) over the levels of ``lower``/``upper`` (the same keys) and the
    median, elementwise. Any level works, so the pre-quantile files' 80/95 bands with ``y_hat``
    (K = 2) are scored by the same formula; a NaN bound gives a NaN score."""
    levels = sorted(lower)
    if sorted(upper) != levels:
        raise ValueError(f"lower and upper bounds must have the same levels, got {sorted(lower)} and {sorted(upper)}")
    y = np.asarray(y, dtype=np.float64)
    total = 0.5 * np.abs(y - np.asarray(median, dtype=np.float64))
    for level in levels:
        alpha = 1.0 - level / 100.0
        total = total + (alpha / 2.0) * interval_score(y, lower[level], upper[level], level)
    return total / (len(levels) + 0.5)


def probabilistic_terms(joined: pd.DataFrame, scored: pd.Series, reference_model: str) -> pd.DataFrame:
    """Every probabilistic term of each forecast: :func:`quantile_terms` and, for the skill,
    :func:`reference_wis_terms` against ``reference_model``."""
    quantile = quantile_terms(joined, scored)
    wis = np.where(quantile["n_quantiles"] > 0, quantile["sum_wis"], np.nan)
    return pd.concat([quantile, reference_wis_terms(joined, wis, reference_model)], axis=1)


def quantile_terms(joined: pd.DataFrame, scored: pd.Series) -> pd.DataFrame:
    """Per forecast (rows of ``joined``: contract rows with their actual ``y``), the additive
    terms of the probabilistic metrics, zero where a forecast does not count for them:

    * ``n_quantiles`` (1 when the actual is known and all nine quantiles are present),
      ``sum_pinball_NNN`` per quantile and ``sum_wis`` over those forecasts;
    * ``n_interval_L`` / ``n_inside_L`` for L in 50 and 90 (the bands of ``q_250..q_750`` and
      ``q_050..q_950``), like the 80/95 coverage terms of :mod:`tasks.core.evaluation.scoring`;
    * ``n_width_L`` / ``sum_width_L`` for L in 80 and 95: the widths of the stored bands over
      the scored forecasts that have them (a width needs no actual, but counting the same
      forecasts as the coverage lets the two be read together).

    A table read from files stored before the quantiles has NaN there: no quantile terms, while
    the widths (from ``y_lo_L``/``y_hi_L``) are still there.
    """
    y = joined["y"].to_numpy(dtype=np.float64)
    quantiles = np.column_stack([_column(joined, c) for c in QUANTILE_COLUMNS])
    full = scored.to_numpy() & np.isfinite(quantiles).all(axis=1)
    terms = {"n_quantiles": full.astype(np.int64)}
    losses = np.column_stack([pinball_loss(y, quantiles[:, j], tau) for j, tau in enumerate(QUANTILES)])
    losses = np.where(full[:, None], losses, 0.0)
    for j, column in enumerate(PINBALL_COLUMNS):
        terms[f"sum_{column}"] = losses[:, j]
    # From the interval formula, not from the pinball terms: the table then shows the identity
    # (wis = 2 x mean pinball) holding rather than assuming it.
    terms["sum_wis"] = np.where(full, row_wis(joined), 0.0)
    for level in (50, 90):
        low, high = (_column(joined, c) for c in interval_quantile_columns(level))
        has = scored.to_numpy() & np.isfinite(low) & np.isfinite(high)
        terms[f"n_interval_{level}"] = has.astype(np.int64)
        terms[f"n_inside_{level}"] = (has & (y >= low) & (y <= high)).astype(np.int64)
    for level in WIDTH_LEVELS:
        width = _column(joined, f"y_hi_{level}") - _column(joined, f"y_lo_{level}")
        has = scored.to_numpy() & np.isfinite(width)
        terms[f"n_width_{level}"] = has.astype(np.int64)
        terms[f"sum_width_{level}"] = np.where(has, width, 0.0)
    return pd.DataFrame(terms, index=joined.index)


def reference_wis_terms(joined: pd.DataFrame, wis: np.ndarray, reference_model: str) -> pd.DataFrame:
    """For skill: per forecast, ``sum_wis_common`` (its WIS) and ``sum_wis_reference`` (the
    reference model's WIS of the same series, cutoff and horizon), both 0 unless both scores
    exist. ``wis``: each row's WIS, NaN where it has none."""
    frame = pd.DataFrame(
        {"unique_id": joined["unique_id"].to_numpy(), "cutoff": joined["cutoff"].to_numpy(), "h": joined["h"].to_numpy(), "wis": wis},
        index=joined.index,
    )
    reference = frame[(joined["model"].astype(str) == reference_model).to_numpy() & np.isfinite(wis)]
    reference = reference.rename(columns={"wis": "reference"})
    matched = frame.merge(reference, on=["unique_id", "cutoff", "h"], how="left", validate="many_to_one")
    both = np.isfinite(matched["wis"].to_numpy()) & np.isfinite(matched["reference"].to_numpy())
    return pd.DataFrame(
        {
            "sum_wis_common": np.where(both, matched["wis"].to_numpy(), 0.0),
            "sum_wis_reference": np.where(both, matched["reference"].to_numpy(), 0.0),
        },
        index=joined.index,
    )


def row_wis(joined: pd.DataFrame) -> np.ndarray:
    """Each row's WIS over the contract's quantiles; NaN without an actual or a full set."""
    y = joined["y"].to_numpy(dtype=np.float64)
    median = _column(joined, "q_500")
    lower, upper = {}, {}
    for level in QUANTILE_LEVELS:
        low, high = interval_quantile_columns(level)
        lower[level], upper[level] = _column(joined, low), _column(joined, high)
    return weighted_interval_score(y, median, lower, upper)


def probabilistic_metrics(sums: pd.DataFrame) -> dict[str, pd.Series]:
    """The metrics table's probabilistic columns (:class:`schemas.metrics.MetricsSchema`, after
    ``coverage_95``) from a window's summed terms (:func:`quantile_terms`,
    :func:`reference_wis_terms`), each a ratio that is NaN where there was nothing to average."""
    n = sums["n_quantiles"]
    pinball = {c: _ratio(sums[f"sum_{c}"], n) for c in PINBALL_COLUMNS}
    total = sum(sums[f"sum_{c}"] for c in PINBALL_COLUMNS)
    return {
        **{f"coverage_{lv}": _ratio(sums[f"n_inside_{lv}"], sums[f"n_interval_{lv}"]) for lv in (50, 90)},
        **{f"width_{lv}": _ratio(sums[f"sum_width_{lv}"], sums[f"n_width_{lv}"]) for lv in WIDTH_LEVELS},
        "quantile_count": n.astype(np.int64),
        "pinball": _ratio(total, n * len(PINBALL_COLUMNS)),
        **pinball,
        "wis": _ratio(sums["sum_wis"], n),
        "wis_skill": 1.0 - _ratio(sums["sum_wis_common"], sums["sum_wis_reference"]),
    }


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.where(denominator > 0)).astype(np.float64)


def _column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A float column, or NaN throughout where the frame predates it (an old file's table)."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return frame[column].to_numpy(dtype=np.float64)
