"""WIS of stored backtests, from what their files hold (issue 21's baseline check).

    python bench/score_wis.py <backtest folder> [--raw CSV.gz]

Reads ``<folder>/forecasts`` through the forecast store (files written before the quantiles read
with NaN ones), scores every target of every cutoff against the raw CTA file, and prints per
series and model: forecasts scored, MAE, 80/95 % coverage and WIS, and the ratio of each to the
seasonal naive's on the same forecasts (same cutoff and h). Files with the nine quantiles are
scored on them (K = 4); files from before them on what they have, the 80 and 95 % bands with
``y_hat`` as the median (K = 2): :func:`tasks.core.evaluation.probabilistic.weighted_interval_score`
either way, so the column says which ``K`` was used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from schemas.forecasts import QUANTILE_COLUMNS  # noqa: E402
from storage.forecasts import ForecastStore  # noqa: E402
from storage.fs import Root  # noqa: E402
from tasks.core.evaluation.probabilistic import row_wis, weighted_interval_score  # noqa: E402

RAW = REPO / "data" / "CTA_-_Ridership_-_Daily_Boarding_Totals.csv.gz"


def read_actuals(raw_csv: str | Path) -> pd.DataFrame:
    raw = pd.read_csv(raw_csv).drop_duplicates()
    raw["ds"] = pd.to_datetime(raw["service_date"], format="%m/%d/%Y")
    long = raw.rename(columns={"rail_boardings": "rail"}).melt(id_vars="ds", value_vars=["bus", "rail"], var_name="unique_id", value_name="y")
    return long.dropna(subset=["y"])


def scored_rows(forecasts: pd.DataFrame, actuals: pd.DataFrame) -> pd.DataFrame:
    """Rows with an actual, their WIS (``wis``) and which ``K`` it used."""
    joined = forecasts.merge(actuals, on=["unique_id", "ds"], how="inner")
    full = joined[list(QUANTILE_COLUMNS)].notna().all(axis=1).to_numpy()
    old = weighted_interval_score(
        joined["y"], joined["y_hat"], {80: joined["y_lo_80"], 95: joined["y_lo_95"]}, {80: joined["y_hi_80"], 95: joined["y_hi_95"]}
    )
    joined["wis"] = np.where(full, row_wis(joined), old)
    joined["k"] = np.where(full, 4, 2)
    joined["abs_error"] = (joined["y_hat"] - joined["y"]).abs()
    for level in (80, 95):
        joined[f"inside_{level}"] = (joined["y"] >= joined[f"y_lo_{level}"]) & (joined["y"] <= joined[f"y_hi_{level}"])
    return joined


def table(rows: pd.DataFrame, reference: str = "naive") -> pd.DataFrame:
    naive = rows[rows["model"] == reference][["unique_id", "cutoff", "h", "wis", "abs_error"]]
    paired = rows.merge(naive, on=["unique_id", "cutoff", "h"], suffixes=("", "_ref"), how="left")
    common = paired.dropna(subset=["wis", "wis_ref"])
    out = rows.groupby(["unique_id", "model"]).agg(
        n=("wis", "size"), k=("k", "max"), mae=("abs_error", "mean"), cov80=("inside_80", "mean"),
        cov95=("inside_95", "mean"), wis=("wis", "mean"),
    )  # fmt: skip
    sums = common.groupby(["unique_id", "model"])[["wis", "wis_ref", "abs_error", "abs_error_ref"]].sum()
    out["wis_vs_naive"] = sums["wis"] / sums["wis_ref"]
    out["mae_vs_naive"] = sums["abs_error"] / sums["abs_error_ref"]
    return out.reset_index().sort_values(["unique_id", "wis"])


def stored_forecasts(folder: str) -> pd.DataFrame:
    """The bus and rail forecasts of a backtest folder, through the forecast store."""
    return ForecastStore(Root.from_url(str(Path(folder).resolve()))).read(series=["bus", "rail"])


def print_table(title: str, forecasts: pd.DataFrame, result: pd.DataFrame) -> None:
    print(f"{title}, cutoffs {forecasts['cutoff'].min():%Y-%m-%d} .. {forecasts['cutoff'].max():%Y-%m-%d}")
    with pd.option_context("display.width", 200, "display.float_format", "{:,.3f}".format):
        print(result.to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--raw", default=str(RAW))
    args = parser.parse_args(argv)
    forecasts = stored_forecasts(args.folder)
    print_table(args.folder, forecasts, table(scored_rows(forecasts, read_actuals(args.raw))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
