"""bench/wis_headroom.py, the hindsight bound quoted for issue 21's WIS target: moving a
forecast by its week's median log error removes a bias that is constant within a week, and
nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.wis_headroom import headroom, shifted
from schemas.forecasts import QUANTILE_COLUMNS, QUANTILES

DAYS = pd.date_range("2021-03-01", "2021-03-28")  # four Monday..Sunday weeks


def forecasts(model: str, factor: np.ndarray, spread: float = 0.1) -> pd.DataFrame:
    """One forecast per day (cutoff the day before, h=1) at ``factor`` × 100, with log-normal-ish
    quantiles of relative ``spread`` around it."""
    median = 100.0 * factor
    frame = pd.DataFrame({"unique_id": "bus", "model": model, "cutoff": DAYS - pd.Timedelta(days=1), "ds": DAYS, "h": 1})
    z = {0.025: -1.96, 0.05: -1.645, 0.1: -1.2816, 0.25: -0.6745, 0.5: 0.0, 0.75: 0.6745, 0.9: 1.2816, 0.95: 1.645, 0.975: 1.96}
    for column, level in zip(QUANTILE_COLUMNS, QUANTILES):
        frame[column] = median * np.exp(spread * z[level])
    return frame


ACTUALS = pd.DataFrame({"unique_id": "bus", "ds": DAYS, "y": 100.0})


def test_a_bias_constant_within_each_week_is_removed_exactly():
    weekly = np.repeat([1.2, 0.9, 1.05, 0.8], 7)
    rows = forecasts("ridge", weekly).merge(ACTUALS, on=["unique_id", "ds"])
    rows["week"] = rows["ds"].dt.to_period("W-SUN")
    moved = shifted(rows, ["week"])
    np.testing.assert_allclose(moved["q_500"], 100.0)
    # The shape around the median is kept: every quantile moved by the same factor.
    np.testing.assert_allclose(moved["q_975"] / moved["q_500"], rows["q_975"] / rows["q_500"])


def test_day_to_day_errors_stay_and_the_bound_ranks_below_the_stored_ratio():
    rng = np.random.default_rng(4)
    daily = np.exp(rng.normal(0, 0.05, len(DAYS)))
    stored = forecasts("ridge", np.repeat([1.2, 0.9, 1.05, 0.8], 7) * daily)
    frame = pd.concat([stored, forecasts("naive", np.exp(rng.normal(0, 0.2, len(DAYS))), spread=0.25)])
    table = headroom(frame, ACTUALS, "ridge").set_index("variant")
    as_stored = table.loc["as stored"]
    weekly = table.loc["+ weekly level, hindsight"]
    assert weekly["mae_vs_naive"] < as_stored["mae_vs_naive"] and weekly["wis_vs_naive"] < as_stored["wis_vs_naive"]
    # What is left is the day-to-day error, which no weekly move removes.
    assert weekly["mae_vs_naive"] > 0.05
    best = table.loc[[v for v in table.index if v.startswith("+ weekly level and best band scale")]].iloc[0]
    assert best["wis_vs_naive"] <= weekly["wis_vs_naive"]
