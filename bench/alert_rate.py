"""How often the coverage alert fires on a stored backtest, and how soon after a shock.

    python bench/alert_rate.py <backtest folder> --start 2019-04-01 --end 2019-12-31 [--after 2020-03-16]
                               [--raw CSV] [--threshold 0.65] [--days 28] [--no-breaks]

Reads ``<folder>/forecasts`` through the forecast store (read only) and the raw CTA totals
(``bench/score_wis.py``'s reader), then evaluates
:func:`tasks.core.evaluation.alerts.coverage_alerts` as the nightly run of every run date R in
``--start .. --end`` would: at eval date R - 1 (the nightly's cutoff), on the forecasts stored
with cutoffs before their targets, and with the level shifts that
:func:`tasks.core.features.level_shifts.series_breaks` finds in the raw totals (the scan only looks
back, so a break detected by R - 1 is the one the nightly would have stored; ``--no-breaks``: the
plain window). A backtest's cutoffs come with a stride, so each target day
holds fewer forecasts than a nightly store's, over the same days.

Prints per series and model: the run dates where it had enough scored days to be judged, the
alerts and their share of all the run dates, the lowest and median coverage on judged nights,
and the first alert on or after ``--after`` (default: ``--start``) with the days it took.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from score_wis import RAW, read_actuals  # noqa: E402  (the same reader of the raw totals)
from storage.forecasts import ForecastStore  # noqa: E402
from storage.fs import Root  # noqa: E402
from tasks.core.evaluation.alerts import (  # noqa: E402
    DEFAULT_COVERAGE_THRESHOLD, DEFAULT_COVERAGE_WINDOW_DAYS, DEFAULT_MIN_DAYS, DEFAULT_MIN_DAYS_AFTER_BREAK,
    band_coverage, break_window_starts, coverage_alerts,
)  # fmt: skip
from tasks.core.features.level_shifts import series_breaks  # noqa: E402


def nightly_coverage(
    forecasts: pd.DataFrame, actuals: pd.DataFrame, run_dates: pd.DatetimeIndex, threshold: float, days: int,
    breaks: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per run date and (series, model) with a scored band that night: the counts of
    :func:`band_coverage` and whether :func:`coverage_alerts` alerted (``judged``: it had the
    days to)."""
    nights = []
    for run_date in run_dates:
        eval_date = run_date - pd.Timedelta(days=1)
        since = break_window_starts(breaks, eval_date, days)
        night = band_coverage(forecasts, actuals, eval_date, window_days=days, since=since)
        found = coverage_alerts(forecasts, actuals, eval_date, threshold=threshold, window_days=days, breaks=breaks)
        alerted = {(a.unique_id, a.model) for a in found}
        night["alert"] = [(u, m) in alerted for u, m in zip(night["unique_id"], night["model"])]
        needed = [DEFAULT_MIN_DAYS_AFTER_BREAK if u in since else DEFAULT_MIN_DAYS for u in night["unique_id"]]
        nights.append(night.assign(run_date=run_date, judged=night["days"] >= needed))
    return pd.concat(nights, ignore_index=True)


def summary(nights: pd.DataFrame, run_dates: pd.DatetimeIndex, after: pd.Timestamp) -> pd.DataFrame:
    """Per (series, model): run dates judged, alerts, their share of every run date, the lowest
    and median coverage on judged nights, and the first alert on or after ``after``."""
    out = []
    for (unique_id, model), rows in nights.groupby(["unique_id", "model"], sort=True):
        judged = rows[rows["judged"]]
        later = rows[(rows["run_date"] >= after) & rows["alert"]]
        first = later["run_date"].min() if not later.empty else None
        out.append(
            {
                "series": unique_id, "model": model, "judged": len(judged), "alerts": int(rows["alert"].sum()),
                "share": rows["alert"].sum() / len(run_dates), "min_cov": judged["coverage"].min(),
                "median_cov": judged["coverage"].median(),
                "first_alert": first.date().isoformat() if first is not None else "-",
                "days_after": (first - after).days if first is not None else None,
            }
        )  # fmt: skip
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--start", required=True, help="first run date")
    parser.add_argument("--end", required=True, help="last run date")
    parser.add_argument("--after", help="report the first alert on or after this run date (default: --start)")
    parser.add_argument("--raw", default=str(RAW))
    parser.add_argument("--threshold", type=float, default=DEFAULT_COVERAGE_THRESHOLD)
    parser.add_argument("--days", type=int, default=DEFAULT_COVERAGE_WINDOW_DAYS)
    parser.add_argument("--no-breaks", action="store_true", help="the plain window, without the detected breaks")
    args = parser.parse_args(argv)
    run_dates = pd.date_range(args.start, args.end)
    after = pd.Timestamp(args.after or args.start)
    forecasts = ForecastStore(Root.from_url(str(Path(args.folder).resolve()))).read(series=["bus", "rail"])
    actuals = read_actuals(args.raw)
    breaks = None if args.no_breaks else series_breaks(actuals.pivot(index="ds", columns="unique_id", values="y"), ["bus", "rail"])
    nights = nightly_coverage(forecasts, actuals, run_dates, args.threshold, args.days, breaks)
    print(
        f"{args.folder}: cutoffs {forecasts['cutoff'].min():%Y-%m-%d} .. {forecasts['cutoff'].max():%Y-%m-%d}; "
        f"run dates {args.start} .. {args.end} ({len(run_dates)}); alert: 80% band held < {args.threshold:.0%} "
        f"of the last {args.days} days' actuals, at least {DEFAULT_MIN_DAYS} days scored"
        + ("" if breaks is None else f"; after a detected break the days since it, at least {DEFAULT_MIN_DAYS_AFTER_BREAK}")
    )
    if breaks is not None:
        print("breaks: " + ", ".join(f"{b.unique_id} {b.start:%Y-%m-%d} (detected {b.detected:%Y-%m-%d})" for b in breaks.itertuples()))
    with pd.option_context("display.width", 200, "display.float_format", "{:,.3f}".format):
        print(summary(nights, run_dates, after).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
