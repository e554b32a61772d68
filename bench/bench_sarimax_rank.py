"""sarimax's regressor columns: only exact duplicates dropped (before) vs linearly dependent ones too.

    python bench/bench_sarimax_rank.py [--models sarimax_log,sarimax] [--series bus,rail]
                                       [--cutoffs 2019-03-01,...] [--repeats 2] [--maxiter 50]

For each model, series and cutoff: the model's own rolling window (400 days) of the real file up
to the cutoff, fitted twice with each column rule through the production ``fit`` (the rule swapped
in for ``tasks.core.models.sarimax._estimable_columns``), then forecast h = 1..14. Prints the
columns kept and their rank, the optimiser's iterations (L-BFGS, capped at 50 by statsmodels as
production runs it; ``--maxiter`` raises the cap to see where it would stop), the fit's CPU time
(this process's, the least of ``--repeats`` fits: on a shared machine wall time measures the
neighbours too) and the largest relative change of ``y_hat``. The CSV comes from ``RIDERSHIP_REAL_CSV``, else ``<repo>/../shared/data/``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from unittest import mock

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # before numpy loads: tiny matrices, shared cores

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from statsmodels.tsa.arima.model import ARIMA  # noqa: E402

import tasks.core.models.sarimax as sarimax  # noqa: E402
from tasks.core.features.calendar_flags import calendar_features  # noqa: E402
from tasks.core.models.catalog import default_training_days, statistical_forecaster  # noqa: E402
from tasks.core.walk_forward import TrainingWindow  # noqa: E402
from bench_accuracy import csv_path, load_history  # noqa: E402  (same folder: the same file, read the same way)

CUTOFFS = ("2019-03-01", "2019-04-15", "2019-06-01", "2020-03-20", "2021-05-01")
HORIZON = 14
MAX_ITERATIONS = 50  # statsmodels' default for L-BFGS in MLEModel.fit


def duplicates_only(exog: np.ndarray, observed: np.ndarray) -> list[int]:
    """The rule before issue 19: drop all-zero columns and exact copies of an earlier kept one."""
    kept: list[int] = []
    for j in range(exog.shape[1]):
        column = exog[observed, j]
        if column.any() and not any(np.array_equal(column, exog[observed, k]) for k in kept):
            kept.append(j)
    return kept


RULES = {"duplicates": duplicates_only, "rank": sarimax._estimable_columns}




def fit_and_forecast(model: str, window: pd.DataFrame, unique_id: str, rule: str, repeats: int, maxiter: int) -> dict:
    forecaster = statistical_forecaster(model)
    original_fit = ARIMA.fit
    iterations: list[int] = []

    def counting_fit(self, *args, **kwargs):
        count = [0]
        method_kwargs = dict(kwargs.pop("method_kwargs", None) or {})
        method_kwargs["callback"] = lambda *_: count.__setitem__(0, count[0] + 1)
        if maxiter != MAX_ITERATIONS:
            method_kwargs["maxiter"] = maxiter
        try:
            return original_fit(self, *args, method_kwargs=method_kwargs, **kwargs)
        finally:
            iterations.append(count[0])

    seconds = []
    with mock.patch.object(sarimax, "_estimable_columns", RULES[rule]), mock.patch.object(ARIMA, "fit", counting_fit):
        for _ in range(repeats):
            started = time.process_time()
            fitted = forecaster.fit(window, unique_id)
            seconds.append(time.process_time() - started)
    exog = calendar_features(window.index, fitted.flags).to_numpy()
    return {
        "columns": len(fitted.flags),
        "rank": int(np.linalg.matrix_rank(exog)) if fitted.flags else 0,
        "iterations": iterations[-1],
        "seconds": min(seconds),
        "y_hat": fitted.forecast(window, HORIZON).mean,
        "flags": fitted.flags,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="sarimax_log,sarimax")
    parser.add_argument("--series", default="bus,rail")
    parser.add_argument("--cutoffs", default=",".join(CUTOFFS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--maxiter", type=int, default=MAX_ITERATIONS, help="L-BFGS iteration cap (production: 50)")
    args = parser.parse_args()
    history = load_history(csv_path()).asfreq("D")
    print(f"{'model':<12}{'series':<7}{'cutoff':<12}{'cols':>10}{'rank':>9}{'iterations':>13}{'fit CPU s':>15}{'max |dy|/y':>12}  dropped")
    for model in args.models.split(","):
        window_days = TrainingWindow.rolling(default_training_days(model))
        totals = {rule: [0.0, 0] for rule in RULES}
        for unique_id in args.series.split(","):
            for cutoff in pd.DatetimeIndex(args.cutoffs.split(",")):
                window = window_days.select(history.loc[:cutoff], cutoff)
                runs = {rule: fit_and_forecast(model, window, unique_id, rule, args.repeats, args.maxiter) for rule in RULES}
                before, after = runs["duplicates"], runs["rank"]
                change = np.max(np.abs(after["y_hat"] - before["y_hat"]) / np.abs(before["y_hat"]))
                for rule, run in runs.items():
                    totals[rule][0] += run["seconds"]
                    totals[rule][1] += run["iterations"] >= args.maxiter
                print(
                    f"{model:<12}{unique_id:<7}{cutoff:%Y-%m-%d}  {before['columns']:>4} > {after['columns']:<3}"
                    f"{before['rank']:>3} > {after['rank']:<3}{before['iterations']:>6} > {after['iterations']:<5}"
                    f"{before['seconds']:>7.2f} > {after['seconds']:<5.2f}{change:>12.2e}  "
                    f"{','.join(f for f in before['flags'] if f not in after['flags'])}",
                    flush=True,
                )
        fits = len(args.series.split(",")) * len(args.cutoffs.split(","))
        print(
            f"{model}: {fits} fits, at the iteration cap {totals['duplicates'][1]} > {totals['rank'][1]}, "
            f"fit CPU time {totals['duplicates'][0]:.2f} s > {totals['rank'][0]:.2f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
