"""Score stored forecasts against the raw CTA file, independently of the project's code.

    python bench/score_forecasts.py <forecasts folder> [--raw CSV] [--first-cutoff D --last-cutoff D]

Reads the forecast contract (hive-partitioned Parquet) with pandas alone and the raw portal CSV
(``service_date`` MM/DD/YYYY, ``bus``, ``rail_boardings``; exact duplicate rows dropped), and
prints per series and model: cutoffs, MAE over h = 1..14 (every scored forecast pooled) and at
h = 1. Targets after the file's last date are not scored.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

RAW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "CTA_-_Ridership_-_Daily_Boarding_Totals.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("forecasts")
    parser.add_argument("--raw", default=str(RAW))
    parser.add_argument("--first-cutoff")
    parser.add_argument("--last-cutoff")
    args = parser.parse_args()
    raw = pd.read_csv(args.raw).drop_duplicates()
    raw["ds"] = pd.to_datetime(raw["service_date"], format="%m/%d/%Y")
    actuals = raw.rename(columns={"rail_boardings": "rail"}).melt(
        id_vars="ds", value_vars=["bus", "rail"], var_name="unique_id", value_name="y"
    )
    forecasts = pd.read_parquet(args.forecasts)
    forecasts["cutoff"] = pd.to_datetime(forecasts["cutoff"].astype(str))
    forecasts["ds"] = pd.to_datetime(forecasts["ds"])
    forecasts["model"] = forecasts["model"].astype(str)
    if args.first_cutoff:
        forecasts = forecasts[forecasts["cutoff"] >= args.first_cutoff]
    if args.last_cutoff:
        forecasts = forecasts[forecasts["cutoff"] <= args.last_cutoff]
    scored = forecasts.merge(actuals, on=["unique_id", "ds"], how="inner")
    scored["error"] = (scored["y_hat"] - scored["y"]).abs()
    print(f"{'series':<7}{'model':<15}{'cutoffs':>8}{'MAE h1-14':>11}{'MAE h1':>9}")
    for (unique_id, model), rows in sorted(scored.groupby(["unique_id", "model"]), key=lambda kv: (kv[0][0], kv[1]["error"].mean())):
        print(
            f"{unique_id:<7}{model:<15}{rows['cutoff'].nunique():>8}{rows['error'].mean():>11,.0f}"
            f"{rows.loc[rows['h'] == 1, 'error'].mean():>9,.0f}"
        )


if __name__ == "__main__":
    main()
