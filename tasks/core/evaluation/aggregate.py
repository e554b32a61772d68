"""Accuracy over many series at once: the aggregate leaderboard and the worst and best series.

Pure functions on frames, like :mod:`tasks.core.evaluation.scoring` (whose terms they reuse, so a series'
MAE, MAPE and count here are the metrics table's, bit for bit). They serve the report once the
job forecasts every bus route and 'L' station besides the system totals: the series in
``exclude`` (``bus``, ``rail``) keep their own leaderboard and are left out of the aggregate.

Definitions, for one model at one horizon ``h`` (``h = 1``, or ``h = 0`` pooling 1..H) in one
window, where S is the set of series (other than ``exclude``) with at least one forecast of
that model at ``h`` scored in the window, and ``MAE_i``/``MAPE_i`` are series i's metrics:

* ``level_i`` — series i's volume: the mean of its actuals ``y`` over the window's target dates
  (every date of the window with an actual, whatever was forecast), so the same for every model.
* ``series`` — |S|; ``count`` — the forecasts scored, over all of S.
* ``mae_mean`` — ``sum_S MAE_i / |S|``: every series counts the same.
* ``mae_weighted`` — ``sum_S level_i * MAE_i / sum_S level_i``: busy series count more.
* ``mape_mean`` — the mean of ``MAPE_i`` over the series of S that have one (a series whose
  scored actuals are all 0 has none).
* ``wape`` — ``100 * sum |y_hat - y| / sum |y|`` over every scored forecast of the model at ``h``
  in S: the volume-weighted MAPE (each forecast's percentage error weighted by its actual), in
  percent. Unlike MAPE it keeps the targets whose actual is 0 (their error counts, they add no
  volume).
* ``rel_mae`` ('vs ref') — ``sum_C level_i * MAE_i / sum_C level_i * MAE_i(reference)`` over C,
  the series of S the reference model also scored at ``h``: the volume-weighted MAE ratio on
  common ground (``mae_weighted`` over the reference's when both scored the same series).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from schemas.metrics import ALL_HORIZONS
from tasks.core.evaluation.scoring import DEFAULT_SERIES, REFERENCE_MODEL, Window, actuals_long, window_scores

EXTREME_SERIES = 10
"""How many worst and best series the report lists per model."""
_HORIZONS = (("h1", 1), ("all", ALL_HORIZONS))
_SCORE_COLUMNS = ["unique_id", "model", "h", "count", "mae", "mape", "abs_error", "abs_actual", "level"]


def series_scores(
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    window: Window,
    exclude: Sequence[str] = DEFAULT_SERIES,
) -> pd.DataFrame:
    """Each series (but ``exclude``) × model at h=1 and pooled (h=0) over ``window``.

    Columns ``unique_id, model, h, count, mae, mape`` (as in the metrics table), ``abs_error``
    and ``abs_actual`` (sums over the scored forecasts) and ``level`` (see the module docstring).
    ``forecasts`` must reach every target of the window; ``actuals`` is the clean frame or the
    long form. Rows with nothing scored are left out.
    """
    ids = forecasts["unique_id"].astype(str)
    others = forecasts[~ids.isin(list(exclude))]
    if others.empty:
        return _typed_scores()
    scores = window_scores(others, actuals, window)
    scores = scores[scores["h"].isin([1, ALL_HORIZONS])]
    long = actuals_long(actuals, series=sorted(others["unique_id"].astype(str).unique()))
    level = long[long["ds"].between(window.start, window.end)].groupby("unique_id")["y"].mean()
    scores = scores.assign(level=scores["unique_id"].map(level).astype(np.float64))
    return scores[_SCORE_COLUMNS].reset_index(drop=True)


def aggregate_leaderboard(scores: pd.DataFrame, reference_model: str = REFERENCE_MODEL) -> pd.DataFrame:
    """One row per model over all series in ``scores`` (from :func:`series_scores`).

    Columns ``model, is_reference`` then, for ``h1`` and ``all`` (pooled horizons):
    ``series_*, mae_mean_*, mae_weighted_*, mape_mean_*, wape_*, rel_mae_*, count_*`` as defined
    in the module docstring. Rows are ordered by ``mae_weighted_all`` (missing last), then model.
    """
    parts = []
    for suffix, h in _HORIZONS:
        rows = scores[scores["h"] == h]
        grouped = rows.assign(weighted_mae=rows["level"] * rows["mae"]).groupby("model", sort=True)
        part = pd.DataFrame(
            {
                "series": grouped["unique_id"].count(),
                "mae_mean": grouped["mae"].mean(),
                "mae_weighted": grouped["weighted_mae"].sum() / grouped["level"].sum(),
                "mape_mean": grouped["mape"].mean(),
                "wape": 100.0 * grouped["abs_error"].sum() / _positive(grouped["abs_actual"].sum()),
                "rel_mae": _vs_reference(rows, reference_model),
                "count": grouped["count"].sum(),
            }
        )
        parts.append(part.add_suffix(f"_{suffix}"))
    board = parts[0].join(parts[1], how="outer").rename_axis("model").reset_index()
    for suffix, _ in _HORIZONS:
        for column in (f"series_{suffix}", f"count_{suffix}"):
            board[column] = board[column].fillna(0).astype(np.int64)
        for column in ("mae_mean", "mae_weighted", "mape_mean", "wape", "rel_mae"):
            board[f"{column}_{suffix}"] = board[f"{column}_{suffix}"].astype(np.float64)
    board.insert(1, "is_reference", board["model"] == reference_model)
    board = board.sort_values(["mae_weighted_all", "model"], na_position="last", kind="stable")
    return board.reset_index(drop=True)


def series_extremes(scores: pd.DataFrame, n: int = EXTREME_SERIES, h: int = ALL_HORIZONS) -> pd.DataFrame:
    """Per model, the ``n`` series with the highest MAPE at ``h`` (``side = "worst"``, highest
    first) and the ``n`` with the lowest (``"best"``, lowest first); ties go by series id.

    Columns ``model, side, rank`` (1 = worst / best) ``, unique_id, mape, mae, level, count``.
    Series without a MAPE are left out; with fewer than 2n series the two lists overlap.
    """
    rows = scores[(scores["h"] == h) & scores["mape"].notna()]
    parts = []
    for side, ascending in (("worst", False), ("best", True)):
        ranked = rows.sort_values(["model", "mape", "unique_id"], ascending=[True, ascending, True], kind="stable")
        top = ranked.groupby("model", sort=False).head(n)
        parts.append(top.assign(side=side, rank=top.groupby("model", sort=False).cumcount().astype(np.int64) + 1))
    columns = ["model", "side", "rank", "unique_id", "mape", "mae", "level", "count"]
    return pd.concat(parts, ignore_index=True)[columns]


# --- internals -----------------------------------------------------------------------------


def _vs_reference(rows: pd.DataFrame, reference_model: str) -> pd.Series:
    reference = rows[rows["model"] == reference_model].set_index("unique_id")["mae"].astype(np.float64)
    common = rows[rows["unique_id"].isin(reference.index)]
    model_error = (common["level"] * common["mae"]).groupby(common["model"]).sum()
    reference_error = (common["level"] * common["unique_id"].map(reference).astype(np.float64)).groupby(common["model"]).sum()
    return model_error / _positive(reference_error)


def _positive(values: pd.Series) -> pd.Series:
    """A denominator: NaN where there was nothing to divide by."""
    return values.where(values > 0)


def _typed_scores() -> pd.DataFrame:
    dtypes = {"unique_id": str, "model": str, "h": np.int64, "count": np.int64}
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, np.float64)) for c in _SCORE_COLUMNS})
