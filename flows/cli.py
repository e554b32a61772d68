"""The ``ridership`` command: one subcommand per flow.

Exit codes: 0 done; 1 unexpected error (a bug: the traceback is printed); 2 rejected (a raw file
or a parameter is invalid; nothing stored changed); 3 unavailable (the source or the storage
cannot be reached or written, or the Dask cluster cannot run the fits; nothing stored changed);
4 degraded (the nightly run wrote its forecasts and report from the last good data because
ingest failed); 143 terminated (SIGTERM: the command ends within seconds; what it stored is
complete, and the same command resumes)."""

from __future__ import annotations

import argparse
import sys

from flows.settings import apply_prefect_defaults
from flows.shutdown import EXIT_CODE as TERMINATED, Terminated, end_promptly_on_sigterm, tell_terminated

FAILURE_WORDS = {2: "rejected", 3: "unavailable", 4: "degraded"}


def _print_ingest_summary(summary) -> None:
    if summary.notice:
        print(f"notice: {summary.notice}")
    print("ingest summary")
    print(f"  source               {summary.source}")
    print(f"  file kind            {summary.kind} ({summary.series:,} series)")
    print(f"  raw copy             {summary.raw_path}")
    print(f"  rows read            {summary.rows_read:,}")
    print(f"  duplicates dropped   {summary.duplicates_dropped:,}")
    print(f"  quarantined          {summary.quarantined:,}" + (f"  ({summary.quarantine_path})" if summary.quarantine_path else ""))
    print(f"  calendar mismatches  {summary.calendar_mismatches:,}  (kept as recorded, logged)")
    print(f"  revised              {summary.revised:,}")
    print(f"  added                {summary.added:,}")
    print(f"  clean rows           {summary.clean_rows:,}  ({summary.first_date} .. {summary.last_date})"
          + ("" if summary.kind == "totals" else "  (this file's series)"))


def _ingest(args: argparse.Namespace) -> int:
    from flows.ingest import ingest

    summary = ingest(source=args.source, storage=args.storage)
    _print_ingest_summary(summary)
    return 0


def _csv_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _iso_date(value: str):
    from datetime import date

    return date.fromisoformat(value)


def _backfill(args: argparse.Namespace) -> int:
    from flows.backfill import backfill
    from flows.common import check_backfill_parameters

    check_backfill_parameters(args.start, args.end, args.models, args.series, args.train_start, args.train_days)
    summary = backfill(
        start=args.start, end=args.end, models=args.models, series=args.series,
        overwrite=args.overwrite, train_start=args.train_start, train_days=args.train_days,
    )
    progress = summary.progress
    print(f"backfill {summary.start} .. {summary.end}: {progress.cutoffs_total} cutoff(s), series {','.join(summary.series)}")
    for model in summary.models:
        print(f"  {model:<14} forecast {progress.stored.get(model, 0):>5}   already stored {progress.skipped.get(model, 0):>5}")
    if progress.lagging:
        print(f"  data lags: {len(progress.lagging)} cutoff(s) after the last clean date were not forecast")
    _print_fallbacks(progress)
    print(f"forecasts: {summary.forecasts_path}")
    print(f"scored:    {summary.scored}")
    _print_report(summary.report)
    return 0


def _backtest(args: argparse.Namespace) -> int:
    from flows.backtest import STANDARD_PERIODS, backtest
    from flows.common import check_backfill_parameters, check_publication_lag
    from schemas.errors import InvalidInput

    start, end = STANDARD_PERIODS[args.period] if args.period else (args.start, args.end)
    if start is None or end is None:
        raise InvalidInput("give --period or both --start and --end")
    check_backfill_parameters(start, end, args.models, args.series)
    check_publication_lag(args.publication_lag, args.models or [])
    lag = f"_lag{args.publication_lag}" if args.publication_lag else ""
    name = args.name or f"{start}_{end}_every{args.every}{lag}"
    from storage import check_backtest_name

    check_backtest_name(name)
    summary = backtest(
        name=name, start=start, end=end, every=args.every, models=args.models, series=args.series, overwrite=args.overwrite,
        publication_lag=args.publication_lag,
    )
    print(f"backtest {summary.name}: {len(summary.cutoffs)} cutoffs {summary.cutoffs[0]} .. {summary.cutoffs[-1]}, series {','.join(summary.series)}")
    print(f"scored on {summary.scored}")
    print(f"{'series':<7}{'model':<15}{'MAE h1':>10}{'MAE h1-14':>11}{'MAPE':>7}{'bias':>9}{'cov80':>7}{'cov95':>7}{'WIS':>9}{'skill':>7}")
    for row in summary.report.leaderboard:
        print(
            f"{row['unique_id']:<7}{row['model']:<15}{_number(row['mae_h1']):>10}{_number(row['mae_all']):>11}"
            f"{_number(row['mape_all'], '.1f'):>7}{_number(row['bias_all']):>9}"
            f"{_number(row['coverage_80_all'], '.0%'):>7}{_number(row['coverage_95_all'], '.0%'):>7}"
            f"{_number(row.get('wis_all')):>9}{_number(row.get('wis_skill_all'), '+.2f'):>7}"
        )
    _print_fallbacks(summary.progress)
    print(f"forecasts: {summary.forecasts_path}")
    _print_report(summary.report)
    return 0


def _number(value, spec: str = ",.0f") -> str:
    return "–" if value is None else format(value, spec)


def _print_fallbacks(progress) -> None:
    if progress.fallbacks:
        print(f"  fallbacks: {len(progress.fallbacks)} forecast(s) from a substitute (seasonal naive or previous RNN champion; see the report)")


def _print_report(outcome) -> None:
    print(f"report:    {outcome.folder or '(none: nothing to score yet)'}")
    for alert in outcome.alerts:
        print(f"  alert: {alert}")


def _report(args: argparse.Namespace) -> int:
    from flows.report import report
    from schemas.errors import InvalidInput

    if args.start is not None and args.end is not None and args.end < args.start:
        raise InvalidInput(f"end {args.end} is before start {args.start}")
    outcome = report(start=args.start, end=args.end)
    _print_report(outcome)
    return 0


def _retrain(args: argparse.Namespace) -> int:
    from flows.rnn import retrain_models
    from tasks.core.models.catalog import check_models

    check_models(args.models or [])
    for outcome in retrain_models(models=args.models, cutoff=args.cutoff):
        if not outcome.version:  # nothing was saved: the failure is recorded in the registry
            print(f"{outcome.model}/{outcome.unique_id} at {outcome.cutoff}: {outcome.reason}")
            continue
        verdict = "champion" if outcome.promoted else "kept incumbent"
        print(
            f"{outcome.model}/{outcome.unique_id} at {outcome.cutoff}: {outcome.version} "
            f"validation MAE {outcome.validation_mae:,.0f} in {outcome.seconds:.0f}s -> {verdict} ({outcome.reason})"
        )
    return 0


def _nightly(args: argparse.Namespace) -> int:
    from flows.nightly import nightly

    _print_nightly_summary(nightly(run_date=args.run_date))
    return 0


def _print_nightly_summary(summary) -> None:
    print(f"nightly run {summary.run_date}: cutoff {summary.cutoff}" + (f" (data lags {summary.lag_days} day(s))" if summary.lag_days else ""))
    print(f"  data: {summary.data_used}")
    if summary.weather:
        print(f"  {summary.weather[:1].lower()}{summary.weather[1:]}")
    for line in summary.regime_alerts:
        print(f"  ALERT regime change: {line}")
    if summary.retrained:
        print(f"  retrained: {', '.join(summary.retrained)}")
    for model, count in summary.progress.stored.items():
        print(f"  {model:<14} forecast {count} cutoff(s), already stored {summary.progress.skipped.get(model, 0)}")
    _print_fallbacks(summary.progress)
    print(f"forecasts: {summary.forecasts_path}")
    _print_report(summary.report)


def _synth(args: argparse.Namespace) -> int:
    from storage.synth import write_portal_files
    from tasks.core.data.synth import ROUTES, STATIONS, TOTALS, check_synth_parameters, synthesize

    check_synth_parameters(args.routes, args.stations, args.start, args.end, args.seed)
    data = synthesize(args.routes, args.stations, args.start, args.end, seed=args.seed)
    frames = {TOTALS: data.totals, ROUTES: data.routes, STATIONS: data.stations}
    series_words = {TOTALS: "series (bus, rail_boardings)", ROUTES: "route ids", STATIONS: "station ids"}
    for written in write_portal_files(args.out, frames):
        summary = data.summary(written.key)
        print(
            f"{written.path}: {summary.rows:,} rows, {summary.series} {series_words[written.key]}, "
            f"{summary.first_date} .. {summary.last_date}, {summary.bad_rows} bad rows, {written.size:,} bytes"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ridership", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser("ingest", help="validate the raw source into the clean store")
    ingest.add_argument("--source", help="override RIDERSHIP_SOURCE")
    ingest.add_argument("--storage", help="override RIDERSHIP_STORAGE")
    ingest.set_defaults(handler=_ingest)

    backfill = commands.add_parser("backfill", help="forecast a range of run dates as the nightly job would have")
    backfill.add_argument("--start", type=_iso_date, required=True, help="first run date (YYYY-MM-DD)")
    backfill.add_argument("--end", type=_iso_date, required=True, help="last run date (YYYY-MM-DD)")
    backfill.add_argument("--models", type=_csv_list, help="comma-separated (default: naive,sarima + RIDERSHIP_RNN_MODELS)")
    backfill.add_argument("--series", type=_csv_list, help="comma-separated (default: RIDERSHIP_SERIES)")
    window = backfill.add_mutually_exclusive_group()
    window.add_argument("--train-start", type=_iso_date, help="SARIMA window expanding from this date")
    window.add_argument("--train-days", type=int, help="SARIMA window rolling over this many days")
    backfill.add_argument("--overwrite", action="store_true", help="recompute cutoffs already stored")
    backfill.set_defaults(handler=_backfill)

    backtest = commands.add_parser("backtest", help="rolling-origin evaluation of models, stored apart from production")
    period = backtest.add_mutually_exclusive_group()
    period.add_argument(
        "--period", choices=["2018", "2019", "2020", "2021"],
        help="a documented period: 2019 = 2019-03-01..12-31, 2020 = 2020-02-01..07-31 (the shock), 2021 = 2021-03-01..11-30; "
        "2018 = 2018-03-01..06-30, the sealed confirmation period (no default is chosen on it)",
    )
    period.add_argument("--start", type=_iso_date, help="first cutoff (YYYY-MM-DD)")
    backtest.add_argument("--end", type=_iso_date, help="last cutoff (YYYY-MM-DD)")
    backtest.add_argument("--every", type=int, default=3, help="days between cutoffs (default: 3)")
    backtest.add_argument("--name", help="folder under <storage>/backtests/ (default: from the dates); the same name resumes")
    backtest.add_argument("--models", type=_csv_list, help="comma-separated (default: the production set)")
    backtest.add_argument("--series", type=_csv_list, help="comma-separated (default: RIDERSHIP_SERIES)")
    backtest.add_argument("--overwrite", action="store_true", help="recompute cutoffs already stored")
    backtest.add_argument(
        "--publication-lag", type=int, default=0, metavar="N",
        help="days of data held back before each cutoff (default: 0, day c known on c + 1): the forecast labelled "
        "cutoff c is made from the data up to c - N and still forecasts c + 1 .. c + horizon, as a nightly run on c + 1 "
        "would if the portal published N days late; statistical models and the ensemble only (the default set "
        "then leaves out the RNNs); the default --name gains _lagN",
    )
    backtest.set_defaults(handler=_backtest)

    nightly = commands.add_parser("nightly", help="the nightly job: ingest, retrain when due, forecast, score, report")
    nightly.add_argument("--run-date", type=_iso_date, help="the day the run is for (default: today, Chicago)")
    nightly.set_defaults(handler=_nightly)

    retrain = commands.add_parser("retrain", help="train RNN challengers at a cutoff and promote the better ones")
    retrain.add_argument("--models", type=_csv_list, help="comma-separated (default: RIDERSHIP_RNN_MODELS)")
    retrain.add_argument("--cutoff", type=_iso_date, help="last day of data to train on (default: the last service date)")
    retrain.set_defaults(handler=_retrain)

    report = commands.add_parser("report", help="recompute metrics and the report from what is stored")
    report.add_argument("--start", type=_iso_date, help="first target date of an explicit range")
    report.add_argument("--end", type=_iso_date, help="evaluation date (default: the last service date)")
    report.set_defaults(handler=_report)

    synth = commands.add_parser(
        "synth", help="write deterministic synthetic portal files (system totals, bus routes, 'L' stations)"
    )
    synth.add_argument("--routes", type=int, required=True, help="number of bus routes")
    synth.add_argument("--stations", type=int, required=True, help="number of 'L' stations")
    synth.add_argument("--start", type=_iso_date, required=True, help="first date (YYYY-MM-DD)")
    synth.add_argument("--end", type=_iso_date, required=True, help="last date (YYYY-MM-DD)")
    synth.add_argument("--out", required=True, help="folder (or fsspec URL) for the three CSV files")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default: 0); the same seed gives the same bytes")
    synth.set_defaults(handler=_synth, uses_prefect=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from schemas.errors import DegradedRun, ExpectedFailure

    with end_promptly_on_sigterm(args.command):
        try:
            if getattr(args, "uses_prefect", True):  # `synth` runs no flow: no Prefect import, no server
                apply_prefect_defaults()
                from flows.console import hide_expected_failure_tracebacks

                hide_expected_failure_tracebacks()
            return args.handler(args)
        except ExpectedFailure as error:
            if isinstance(error, DegradedRun) and error.outcome is not None:
                _print_nightly_summary(error.outcome)
            print(f"ridership {args.command}: {FAILURE_WORDS.get(error.exit_code, 'failed')}: {error}", file=sys.stderr)
            return error.exit_code
        except Terminated:
            tell_terminated(args.command)
            return TERMINATED


if __name__ == "__main__":
    sys.exit(main())
