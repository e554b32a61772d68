"""Score stored station forecasts against the raw 'L' station file, independently of the
project's scoring code (the acceptance of the station backtest, docs/models-and-accuracy.md#stations).

    python bench/score_stations.py <forecasts folder> [--raw STATIONS.csv.gz]

Reads the forecast contract (hive-partitioned Parquet) with pandas alone and the raw portal file
(``station_id, date`` MM/DD/YYYY, ``rides``; a (station, date) published twice with different
values is ambiguous and left out, as ingest quarantines it). Prints, per model:

* WAPE = sum |error| / sum actual over every station, cutoff and h with an actual, for h = 1..14
  and h = 1, over the stations with a value on each of the 28 days up to the first cutoff and on
  the last day of the forecasts' targets;
* the largest ratio of a station's mean MAE h = 1..14 to its seasonal naive's, and which station;
* ``rail_entries`` (the daily sum of the raw station entries) WAPE, where forecast;
* for ``<model>@reconciled``: the largest |rail_entries - sum of stations| / rail_entries over
  every (cutoff, h), the coherence the reconciliation promises.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RAW = REPO.parent / "shared" / "data" / "CTA_-_Ridership_-__L__Station_Entries_-_Daily_totals.csv.gz"
PARENT = "rail_entries"


def read_actuals(raw: str | Path) -> pd.DataFrame:
    """``unique_id, ds, y``: each station's entries, and their daily sum as ``rail_entries``."""
    frame = pd.read_csv(raw, usecols=["station_id", "date", "rides"])
    frame["ds"] = pd.to_datetime(frame["date"], format="%m/%d/%Y")
    frame = frame.drop_duplicates(["station_id", "ds", "rides"])
    frame = frame[~frame.duplicated(["station_id", "ds"], keep=False)]
    stations = pd.DataFrame({"unique_id": "station:" + frame["station_id"].astype(str), "ds": frame["ds"], "y": frame["rides"].astype(float)})
    total = stations.groupby("ds", as_index=False)["y"].sum().assign(unique_id=PARENT)
    return pd.concat([stations, total[["unique_id", "ds", "y"]]], ignore_index=True)


def eligible_stations(actuals: pd.DataFrame, first_cutoff: pd.Timestamp, last_day: pd.Timestamp) -> set[str]:
    stations = actuals[actuals["unique_id"].str.startswith("station:")]
    before = stations[(stations["ds"] > first_cutoff - pd.Timedelta(days=28)) & (stations["ds"] <= first_cutoff)]
    full = before.groupby("unique_id")["ds"].nunique()
    last = set(stations.loc[stations["ds"] == last_day, "unique_id"])
    return set(full[full == 28].index) & last


def wape(rows: pd.DataFrame) -> float:
    return float(rows["error"].sum() / rows["y"].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("forecasts")
    parser.add_argument("--raw", default=str(RAW))
    args = parser.parse_args()
    forecasts = pd.read_parquet(args.forecasts)
    forecasts["model"] = forecasts["model"].astype(str)
    forecasts["cutoff"] = pd.to_datetime(forecasts["cutoff"].astype(str))
    forecasts["ds"] = pd.to_datetime(forecasts["ds"])
    actuals = read_actuals(args.raw)
    joined = forecasts.merge(actuals, on=["unique_id", "ds"])
    joined["error"] = (joined["y_hat"] - joined["y"]).abs()
    first, last = forecasts["cutoff"].min(), joined["ds"].max()
    chosen = eligible_stations(actuals, first, last)
    cutoffs = forecasts["cutoff"].nunique()
    print(f"{cutoffs} cutoffs {first.date()}..{forecasts['cutoff'].max().date()}, {len(chosen)} stations, targets up to {last.date()}")
    stations = joined[joined["unique_id"].isin(chosen)]
    per_station = stations.groupby(["model", "unique_id"])["error"].mean()
    naive = per_station.xs("naive", level="model") if "naive" in per_station.index.get_level_values("model") else None
    print(f"{'model':<26}{'WAPE h=1..14':>13}{'WAPE h=1':>10}{'max vs naive':>14}  {'rail_entries WAPE':>18}")
    for model, rows in stations.groupby("model"):
        worst = ""
        if naive is not None:
            ratio = (per_station.xs(model, level="model") / naive).dropna()
            worst = f"{ratio.max():.2f} {ratio.idxmax()}"
        parent = joined[(joined["model"] == model) & (joined["unique_id"] == PARENT)]
        parent_wape = f"{wape(parent):.4f}" if len(parent) else "-"
        print(f"{model:<26}{wape(rows):>13.4f}{wape(rows[rows['h'] == 1]):>10.4f}{worst:>28}  {parent_wape:>8}")
    for model in sorted(m for m in forecasts["model"].unique() if m.endswith("@reconciled")):
        rows = forecasts[forecasts["model"] == model]
        children = rows[rows["unique_id"].str.startswith("station:")].groupby(["cutoff", "h"])["y_hat"].sum()
        parent = rows[rows["unique_id"] == PARENT].set_index(["cutoff", "h"])["y_hat"]
        gap = ((parent - children).abs() / parent).dropna()
        print(f"{model}: largest |{PARENT} - sum of stations| / {PARENT} over {len(gap)} (cutoff, h): {gap.max():.2e}")


if __name__ == "__main__":
    main()
