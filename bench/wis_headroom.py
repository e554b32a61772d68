"""How far a stored backtest's WIS could fall with hindsight: a bound for the WIS target.

    python bench/wis_headroom.py <backtest folder> [--model ridge] [--raw CSV.gz]

Issue 21 asks the best production model for a WIS at most 0.5 x the seasonal naive's. For
calibrated bands WIS follows the point error, so this asks how good the point forecast would
have to be. It takes ``--model``'s stored quantiles (the nine of the contract) and scores, against
the raw file and beside the stored naive on the same cutoffs and horizons:

* ``as stored``: the forecasts as the flow wrote them;
* ``+ weekly level, hindsight``: every quantile of a target moved by the median log error of that
  series' forecasts for targets in the same calendar week (Monday..Sunday), measured after the
  fact: as if the forecast had known each week's level exactly and kept its own day-to-day shape;
* ``+ weekday x month level, hindsight``: the same with the median per weekday and month;
* ``+ best band scale``: on top of the weekly shift, the quantiles' distances from the median
  scaled by the one factor per series (0.3..3) that minimises the period's WIS.

None of these can be made at the cutoff: they are bounds, not models. If even the weekly oracle
stays above 0.5 x the naive, no band and no calibration reaches the target with a forecast
whose week-to-week level is any less than perfect.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.score_wis import RAW, print_table, read_actuals, stored_forecasts  # noqa: E402
from schemas.forecasts import QUANTILE_COLUMNS  # noqa: E402
from tasks.core.evaluation.probabilistic import row_wis  # noqa: E402

MEDIAN = "q_500"
SCALES = np.round(np.arange(0.3, 3.01, 0.05), 2)


def shifted(rows: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    """``rows`` with every quantile moved by the median log error of its group (hindsight)."""
    log_error = np.log(rows[MEDIAN]) - np.log(rows["y"])
    bias = log_error.groupby([rows[g] for g in groups]).transform("median")
    out = rows.copy()
    for column in QUANTILE_COLUMNS:
        out[column] = rows[column] * np.exp(-bias)
    return out


def rescaled(rows: pd.DataFrame, scale: float) -> pd.DataFrame:
    out = rows.copy()
    for column in QUANTILE_COLUMNS:
        out[column] = rows[MEDIAN] + scale * (rows[column] - rows[MEDIAN])
    return out


def best_scale(rows: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    scores = {scale: row_wis(rescaled(rows, scale)).mean() for scale in SCALES}
    scale = min(scores, key=scores.get)
    return float(scale), rescaled(rows, scale)


def headroom(forecasts: pd.DataFrame, actuals: pd.DataFrame, model: str) -> pd.DataFrame:
    joined = forecasts.merge(actuals, on=["unique_id", "ds"], how="inner")
    joined = joined[joined[list(QUANTILE_COLUMNS)].notna().all(axis=1)]
    joined["week"] = joined["ds"].dt.to_period("W-SUN")
    joined["weekday_month"] = joined["ds"].dt.day_of_week.astype(str) + joined["ds"].dt.strftime("%Y-%m")
    lines = []
    for unique_id, rows in joined.groupby("unique_id"):
        naive = rows[rows["model"] == "naive"].set_index(["cutoff", "h"])
        own = rows[rows["model"] == model]
        own = own[own.set_index(["cutoff", "h"]).index.isin(naive.index)]
        reference = row_wis(naive.reset_index()).sum()
        weekly = shifted(own, ["week"])
        scale, weekly_scaled = best_scale(weekly)
        variants = {
            "as stored": own,
            "+ weekly level, hindsight": weekly,
            "+ weekday x month level, hindsight": shifted(own, ["weekday_month"]),
            f"+ weekly level and best band scale ({scale:.2f}), hindsight": weekly_scaled,
        }
        naive_mae = (naive[MEDIAN] - naive["y"]).abs().sum()
        for name, variant in variants.items():
            lines.append({
                "unique_id": unique_id, "variant": name, "n": len(variant),
                "mae_vs_naive": (variant[MEDIAN] - variant["y"]).abs().sum() / naive_mae,
                "wis_vs_naive": row_wis(variant).sum() / reference,
            })  # fmt: skip
    return pd.DataFrame(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--model", default="ridge")
    parser.add_argument("--raw", default=str(RAW))
    args = parser.parse_args(argv)
    forecasts = stored_forecasts(args.folder)
    print_table(f"{args.folder}: {args.model}", forecasts, headroom(forecasts, read_actuals(args.raw), args.model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
