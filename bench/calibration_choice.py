"""The calibration rule's choice, reproduced from a stored backtest (issue 21, item 3).

    python bench/calibration_choice.py <backtest folder> [--raw CSV] [--gains 0.005,0.01,0.02]

Takes each model's bands as forecast (``<model>@raw`` where the backtest stored them, else the
model's rows), recalibrates them with every candidate and prints, per series and model, the
80/95 % coverage and the WIS (K = 2 on pre-quantile files, as ``bench/score_wis.py``) of:

* ``raw``: the bands as forecast;
* ``split-W``: split conformal (on the 80 and 95 % bands only: a model with all nine quantiles,
  e.g. sarima, keeps its raw WIS in these columns) on the log scale of the model's own bands (CQR-style score
  ``max(log(lo/y), log(y/hi))``, the finite-sample ``ceil((n+1)(1-a))``-th score of the matured
  forecasts of the last W days, every horizon pooled), W = 56, 182, 365;
* ``aci-g``: the production rule (:mod:`tasks.core.calibration`) at gain g.

Every candidate only sees forecasts issued before each cutoff and actuals up to it.
"""

from __future__ import annotations

import argparse
import warnings
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from score_wis import RAW, read_actuals, scored_rows  # noqa: E402
from storage.forecasts import ForecastStore  # noqa: E402
from storage.fs import Root  # noqa: E402
from tasks.core.calibration import CalibrationSpec, calibrate_pending, is_raw  # noqa: E402

SPLIT_WINDOWS = (56, 182, 365)


def bands_as_forecast(stored: pd.DataFrame) -> pd.DataFrame:
    """One frame per model of its raw bands: ``<model>@raw`` rows renamed, else the model's."""
    raw = stored[stored["model"].astype(str).map(is_raw)].copy()
    raw["model"] = raw["model"].astype(str).str.removesuffix("@raw")
    plain = stored[~stored["model"].astype(str).map(is_raw) & ~stored["model"].astype(str).isin(raw["model"])]
    frame = pd.concat([raw, plain.assign(model=plain["model"].astype(str))], ignore_index=True)
    frame["model_version"] = frame["model_version"].astype(str).str.replace(r"\+aci\[.*\]$", "", regex=True)
    return frame


def split_conformal(frame: pd.DataFrame, actuals: pd.DataFrame, window: int) -> pd.DataFrame:
    out = []
    values = actuals.set_index(["unique_id", "ds"])["y"]
    for _, group in frame.groupby(["model", "unique_id"]):
        group = group.sort_values(["cutoff", "h"]).reset_index(drop=True)
        y = values.reindex(pd.MultiIndex.from_arrays([group["unique_id"].astype(str), group["ds"]])).to_numpy()
        result = group.copy()
        for level in (80, 95):
            score = np.maximum(np.log(group[f"y_lo_{level}"] / y), np.log(y / group[f"y_hi_{level}"]))
            for cutoff in group["cutoff"].unique():
                mature = ((group["cutoff"] < cutoff) & (group["ds"] <= cutoff) & (group["ds"] > cutoff - pd.Timedelta(days=window))).to_numpy()
                scores = np.sort(score[mature & np.isfinite(score)])
                rank = int(np.ceil((len(scores) + 1) * level / 100))
                if len(scores) < 10 or rank > len(scores):
                    continue
                at = (group["cutoff"] == cutoff).to_numpy()
                q = np.exp(scores[rank - 1])
                result.loc[at, f"y_lo_{level}"] = group.loc[at, f"y_lo_{level}"] / q
                result.loc[at, f"y_hi_{level}"] = group.loc[at, f"y_hi_{level}"] * q
        out.append(result)
    return pd.concat(out, ignore_index=True)


def aci(frame: pd.DataFrame, actuals: pd.DataFrame, gain: float) -> pd.DataFrame:
    spec = CalibrationSpec(gain=gain)
    return pd.concat(
        [calibrate_pending(rows, actuals, sorted(rows["cutoff"].unique()), spec)[0] for _, rows in frame.groupby("model")],
        ignore_index=True,
    )


def summary(frame: pd.DataFrame, actuals: pd.DataFrame) -> pd.DataFrame:
    rows = scored_rows(frame, actuals)
    return rows.groupby(["unique_id", "model"]).agg(cov80=("inside_80", "mean"), cov95=("inside_95", "mean"), wis=("wis", "mean"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--raw", default=str(RAW))
    parser.add_argument("--gains", default="0.005,0.01,0.02")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", "invalid value encountered in log")  # the score of a NaN band
    stored = ForecastStore(Root.from_url(str(Path(args.folder).resolve()))).read(series=["bus", "rail"])
    frame = bands_as_forecast(stored)
    actuals = read_actuals(args.raw)
    results = {"raw": summary(frame, actuals)}
    for window in SPLIT_WINDOWS:
        results[f"split-{window}"] = summary(split_conformal(frame, actuals, window), actuals)
    for gain in (float(g) for g in args.gains.split(",")):
        results[f"aci-{gain:g}"] = summary(aci(frame, actuals, gain), actuals)
    table = pd.concat(results, axis=1)
    print(f"{args.folder}: cutoffs {frame['cutoff'].min():%Y-%m-%d} .. {frame['cutoff'].max():%Y-%m-%d}")
    with pd.option_context("display.width", 250, "display.max_columns", 60, "display.float_format", "{:,.3f}".format):
        print(table.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
