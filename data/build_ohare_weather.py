"""Builds ``data/ohare_weather_daily_1995-2024.csv.gz`` from the team's two O'Hare copies
(data/README.md, "O'Hare daily weather"): the GHCN-Daily file as NCEI gave it (standard units),
then the 2018-2024 metric copy converted to standard units merged over it by date, the newer copy
winning wherever it has a value (the weather store's own rule, tasks/core/data/weather.py).

    .venv/bin/python data/build_ohare_weather.py ../shared/data | gzip -9n > data/ohare_weather_daily_1995-2024.csv.gz

Writes the CSV to standard output and how the two copies agree over the days they share to
standard error. Byte for byte reproducible (``gzip -n``: no name, no time stamp in the header).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schemas.weather import OBSERVED_VARIABLES  # noqa: E402
from tasks.core.data.weather import merge_observed, observed_csv, parse_ncei_csv, standard_units  # noqa: E402

GHCN_FILE = "ohare_ghcn_daily_1995-2019.csv"
METRIC_FILE = "ohare_daily_weather_2018-2024.csv"


def build(shared: Path) -> tuple[bytes, str]:
    """The merged file's bytes (uncompressed) and a report of the overlap."""
    ghcn = parse_ncei_csv((shared / GHCN_FILE).read_bytes(), GHCN_FILE, station="USW00094846")
    metric = standard_units(pd.read_csv(shared / METRIC_FILE))
    shared_days = ghcn.merge(metric, on="date", suffixes=("_ghcn", "_metric"))
    lines = [f"{len(shared_days)} days in both copies ({shared_days['date'].min().date()} .. {shared_days['date'].max().date()})"]
    for column in OBSERVED_VARIABLES:
        old, new = shared_days[f"{column}_ghcn"], shared_days[f"{column}_metric"]
        both = old.notna() & new.notna()
        differ = [str(d.date()) for d in shared_days.loc[both & (old != new), "date"]]
        only_new = [str(d.date()) for d in shared_days.loc[old.isna() & new.notna(), "date"]]
        lines.append(f"  {column}: {int(both.sum())} days with both values, differ on {differ or 'none'}, only the newer copy has {only_new or 'none'}")
    merged = merge_observed(ghcn, metric)
    lines.append(f"merged: {len(merged.observed)} days, {merged.revised} stored value(s) revised by the newer copy")
    return observed_csv(merged.observed), "\n".join(lines)


def main(argv: list[str]) -> int:
    data, report = build(Path(argv[1]))
    sys.stdout.buffer.write(data)
    print(report, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
