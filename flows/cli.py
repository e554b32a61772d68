"""The ``ridership`` command: one subcommand per flow."""

from __future__ import annotations

import argparse
import sys

from flows.settings import apply_prefect_defaults

EXIT_REJECTED = 2


def _print_ingest_summary(summary) -> None:
    print("ingest summary")
    print(f"  source               {summary.source}")
    print(f"  raw copy             {summary.raw_path}")
    print(f"  rows read            {summary.rows_read:,}")
    print(f"  duplicates dropped   {summary.duplicates_dropped:,}")
    print(f"  quarantined          {summary.quarantined:,}" + (f"  ({summary.quarantine_path})" if summary.quarantine_path else ""))
    print(f"  calendar mismatches  {summary.calendar_mismatches:,}  (kept as recorded, logged)")
    print(f"  revised              {summary.revised:,}")
    print(f"  added                {summary.added:,}")
    print(f"  clean rows           {summary.clean_rows:,}  ({summary.first_date} .. {summary.last_date})")


def _ingest(args: argparse.Namespace) -> int:
    from flows.ingest import ingest

    summary = ingest(source=args.source, storage=args.storage)
    _print_ingest_summary(summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ridership", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser("ingest", help="validate the raw source into the clean store")
    ingest.add_argument("--source", help="override RIDERSHIP_SOURCE")
    ingest.add_argument("--storage", help="override RIDERSHIP_STORAGE")
    ingest.set_defaults(handler=_ingest)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_prefect_defaults()
    from storage.source import SourceUnavailable
    from tasks.core.cleaning import RawFileError

    try:
        return args.handler(args)
    except (RawFileError, SourceUnavailable) as error:
        print(f"ridership {args.command}: rejected: {error}", file=sys.stderr)
        return EXIT_REJECTED


if __name__ == "__main__":
    sys.exit(main())
