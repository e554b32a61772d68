"""Score stored forecasts against the raw CTA file, independently of the project's scoring code.

    python bench/score_forecasts.py <forecasts folder> [--raw CSV] [--first-cutoff D --last-cutoff D]
                                    [--targets all|run_dates]

Reads the forecast contract (hive-partitioned Parquet) with pandas alone and the raw portal CSV
(``service_date`` MM/DD/YYYY, ``bus``, ``rail_boardings``; exact duplicate rows dropped), and
prints per series and model: cutoffs, MAE over h = 1..14 (every scored forecast pooled) and at
h = 1. Which targets are scored is the project's one definition,
:func:`tasks.core.evaluation.scoring.scored_targets`, over the cutoffs read (the first to the last)
and printed first:

* ``--targets all`` (default; a backtest's leaderboard): every target of every cutoff, up to the
  file's last date.
* ``--targets run_dates`` (a backfill's leaderboard): only the targets on the run dates, cutoff + 1
  of each cutoff, so the last cutoffs' forecasts of later days are left out.

The leaderboard scores every stored forecast whose target is in the window; this script the
forecasts in the folder whose cutoff is in ``--first-cutoff`` .. ``--last-cutoff``. They agree to the
rider when the folder holds only the run's cutoffs (a backtest's folder always does; a backfill
into a store that also holds earlier nightly forecasts of its first days does not).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tasks.core.evaluation.scoring import TARGET_SCOPES, Window, scored_targets  # noqa: E402

RAW = REPO.parent / "shared" / "data" / "CTA_-_Ridership_-_Daily_Boarding_Totals.csv"


def read_actuals(raw_csv: str | Path) -> pd.DataFrame:
    """The raw file's bus and rail as long ``unique_id, ds, y`` rows."""
    raw = pd.read_csv(raw_csv).drop_duplicates()
    raw["ds"] = pd.to_datetime(raw["service_date"], format="%m/%d/%Y")
    return raw.rename(columns={"rail_boardings": "rail"}).melt(
        id_vars="ds", value_vars=["bus", "rail"], var_name="unique_id", value_name="y"
    ).dropna(subset=["y"])


def score(
    forecasts: pd.DataFrame, actuals: pd.DataFrame, scope: str = "all",
    first_cutoff: str | None = None, last_cutoff: str | None = None,
) -> tuple[Window, pd.DataFrame]:
    """The window of targets scored and, per series and model, ``cutoffs``, ``mae_all`` (h pooled)
    and ``mae_h1``, ordered by series then ``mae_all``."""
    forecasts = forecasts.assign(
        cutoff=pd.to_datetime(forecasts["cutoff"].astype(str)),
        ds=pd.to_datetime(forecasts["ds"]),
        model=forecasts["model"].astype(str),
        unique_id=forecasts["unique_id"].astype(str),
    )
    if first_cutoff:
        forecasts = forecasts[forecasts["cutoff"] >= first_cutoff]
    if last_cutoff:
        forecasts = forecasts[forecasts["cutoff"] <= last_cutoff]
    last_actual = actuals["ds"].max()
    window = scored_targets(
        forecasts["cutoff"].min(), forecasts["cutoff"].max(), int(forecasts["h"].max()), last_actual, scope  # type: ignore[arg-type]
    )
    in_window = forecasts[(forecasts["ds"] >= window.start) & (forecasts["ds"] <= window.end)]
    scored = in_window.merge(actuals, on=["unique_id", "ds"], how="inner")
    scored["error"] = (scored["y_hat"] - scored["y"]).abs()
    grouped = scored.groupby(["unique_id", "model"])
    h1 = scored[scored["h"] == 1].groupby(["unique_id", "model"])
    table = pd.DataFrame(
        {"cutoffs": grouped["cutoff"].nunique(), "mae_all": grouped["error"].mean(), "mae_h1": h1["error"].mean()}
    ).reset_index()
    table = table.sort_values(["unique_id", "mae_all"], kind="stable", ignore_index=True)
    return window, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("forecasts")
    parser.add_argument("--raw", default=str(RAW))
    parser.add_argument("--first-cutoff")
    parser.add_argument("--last-cutoff")
    parser.add_argument("--targets", choices=list(TARGET_SCOPES), default="all", help="which targets to score (default: all)")
    args = parser.parse_args()
    window, table = score(pd.read_parquet(args.forecasts), read_actuals(args.raw), args.targets, args.first_cutoff, args.last_cutoff)
    print(f"targets {window.start.date()}..{window.end.date()}: {TARGET_SCOPES[args.targets]}")
    print(f"{'series':<7}{'model':<15}{'cutoffs':>8}{'MAE h1-14':>11}{'MAE h1':>9}")
    for row in table.itertuples(index=False):
        print(f"{row.unique_id:<7}{row.model:<15}{int(row.cutoffs):>8}{row.mae_all:>11,.0f}{row.mae_h1:>9,.0f}")


if __name__ == "__main__":
    main()
