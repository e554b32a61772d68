"""Forecast accuracy of the statistical models: the walk-forward engine in-process on the real file.

    python bench/bench_accuracy.py [--protocols A,B,C] [--models naive,sarima,...] [--series bus,rail]
                                   [--jobs N] [--train-days MODEL=DAYS ...] [--csv OUT]

Protocols (issue 10), every forecast h = 1..14, refitted at every cutoff on data up to it only:

* ``A`` — the nightly runs of 2019-03-01..2019-05-31: cutoffs 2019-02-28..2019-05-30 (92).
* ``B`` — cutoffs ``pd.date_range("2019-03-01", "2019-12-31", freq="3D")``: 2019-03-01, 03-04, ...,
  2019-12-29 (102).
* ``C`` — the same over 2021: ``pd.date_range("2021-03-01", "2021-11-30", freq="3D")`` (92), the
  COVID recovery with a strong trend.

Scored against the clean actuals; a target after the file's last date (2021-11-30) is left out.
"mean h1..14" pools every scored forecast of h = 1..14 (the metrics table's ``h = 0``); with no
target left out it equals the mean of the 14 per-horizon MAEs. Each model trains on its own
default window (:func:`tasks.core.models.catalog.default_training_days`) unless ``--train-days`` says
otherwise. Fit time is the model's wall time per (series, cutoff): fit and forecast, in-process.
The CSV comes from ``RIDERSHIP_REAL_CSV``, else ``<repo>/../shared/data/``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # before numpy loads: tiny matrices, shared cores

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tasks.core.models.catalog import STATISTICAL_MODELS, default_training_days, statistical_forecaster  # noqa: E402
from tasks.core.walk_forward import TrainingWindow, historical_forecasts  # noqa: E402

CSV_NAME = "CTA_-_Ridership_-_Daily_Boarding_Totals.csv"
HORIZON = 14
PROTOCOLS = {
    "A": pd.date_range("2019-03-01", "2019-05-31", freq="D") - pd.Timedelta(days=1),
    "B": pd.date_range("2019-03-01", "2019-12-31", freq="3D"),
    "C": pd.date_range("2021-03-01", "2021-11-30", freq="3D"),
}


def csv_path() -> Path:
    configured = os.environ.get("RIDERSHIP_REAL_CSV")
    return Path(configured) if configured else REPO.parent / "shared" / "data" / CSV_NAME


def load_history(path: Path) -> pd.DataFrame:
    """The file as the engine's history (exact duplicate rows dropped, as the real ingest does)."""
    raw = pd.read_csv(path, parse_dates=["service_date"], date_format="%m/%d/%Y").drop_duplicates()
    history = raw.rename(columns={"service_date": "ds", "rail_boardings": "rail"}).set_index("ds").sort_index()
    return history[["bus", "rail", "day_type"]].astype({"bus": "float64", "rail": "float64"})


def score(forecasts: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """MAE at h = 1 and over h = 1..14, plus 95 % coverage, per series; unscorable targets dropped."""
    actual = history[["bus", "rail"]].stack().rename("y")
    actual.index = actual.index.set_names(["ds", "unique_id"])
    joined = forecasts.join(actual, on=["ds", "unique_id"], how="inner")
    joined = joined.assign(err=(joined["y_hat"] - joined["y"]).abs())
    inside = (joined["y"] >= joined["y_lo_95"]) & (joined["y"] <= joined["y_hi_95"])
    joined = joined.assign(inside_95=inside, inside_80=(joined["y"] >= joined["y_lo_80"]) & (joined["y"] <= joined["y_hi_80"]))
    grouped = joined.groupby("unique_id")
    return pd.DataFrame(
        {
            "mae_h1_14": grouped["err"].mean(),
            "mae_h1": joined[joined["h"] == 1].groupby("unique_id")["err"].mean(),
            "cover_80": grouped["inside_80"].mean(),
            "cover_95": grouped["inside_95"].mean(),
            "scored": grouped["err"].size(),
        }
    )


def run(history: pd.DataFrame, model: str, series: list[str], protocol: str, jobs: int, train_days: int) -> tuple[pd.DataFrame, float]:
    cutoffs = PROTOCOLS[protocol]
    started = time.perf_counter()
    forecasts = historical_forecasts(
        history, statistical_forecaster(model), series, cutoffs, horizon=HORIZON,
        window=TrainingWindow.rolling(train_days), n_jobs=jobs,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    return forecasts, seconds * max(jobs, 1) / (len(series) * len(cutoffs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocols", default="A,B,C")
    parser.add_argument("--models", default=",".join(STATISTICAL_MODELS))
    parser.add_argument("--series", default="bus,rail")
    parser.add_argument("--jobs", type=int, default=1, help="engine worker processes (default 1: the machine is shared)")
    parser.add_argument("--train-days", nargs="*", default=[], metavar="MODEL=DAYS", help="override a model's rolling window")
    parser.add_argument("--csv", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()

    history = load_history(csv_path())
    overrides = {k: int(v) for k, v in (item.split("=") for item in args.train_days)}
    series = args.series.split(",")
    rows = []
    for protocol in args.protocols.split(","):
        cutoffs = PROTOCOLS[protocol]
        print(f"protocol {protocol}: {len(cutoffs)} cutoffs {cutoffs[0]:%Y-%m-%d}..{cutoffs[-1]:%Y-%m-%d}, h=1..{HORIZON}", flush=True)
        for model in args.models.split(","):
            days = overrides.get(model, default_training_days(model))
            forecasts, per_fit = run(history, model, series, protocol, args.jobs, days)
            scores = score(forecasts, history)
            for uid in series:
                s = scores.loc[uid]
                rows.append(dict(protocol=protocol, model=model, series=uid, train_days=days, mae_h1_14=s["mae_h1_14"],
                                 mae_h1=s["mae_h1"], cover_80=s["cover_80"], cover_95=s["cover_95"],
                                 scored=int(s["scored"]), sec_per_fit=per_fit))  # fmt: skip
                print(f"  {model:>14} {uid:>4} ({days:>4} d): mean h1..14 {s['mae_h1_14']:>9,.0f}  h1 {s['mae_h1']:>9,.0f}"
                      f"  cover80 {s['cover_80']:.2f} cover95 {s['cover_95']:.2f}  {per_fit * 1000:6.0f} ms/fit", flush=True)  # fmt: skip
    table = pd.DataFrame(rows)
    if args.csv is not None:
        table.to_csv(args.csv, index=False)
    if not table.empty:
        wide = table.pivot_table(index=["model"], columns=["protocol", "series"], values=["mae_h1_14", "mae_h1"], sort=False)
        with pd.option_context(
            "display.width", 250, "display.max_columns", None, "display.float_format", "{:,.0f}".format
        ):
            print(wide.swaplevel(0, 1, axis=1).sort_index(axis=1, level=[0, 1], sort_remaining=False))


if __name__ == "__main__":
    main()
