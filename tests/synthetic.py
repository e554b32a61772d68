"""Small synthetic ridership series made in code (no real data needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.core.features.calendar import day_types

WEEKLY_BUS = np.array([700_000, 720_000, 730_000, 725_000, 690_000, 420_000, 300_000])
WEEKLY_RAIL = np.array([500_000, 510_000, 515_000, 512_000, 480_000, 300_000, 210_000])


def synthetic_clean(start: str = "2018-01-01", end: str = "2019-06-30", seed: int = 7) -> pd.DataFrame:
    """A clean-store frame with a weekly pattern, a slow trend and noise."""
    dates = pd.date_range(start, end, freq="D")
    rng = np.random.default_rng(seed)
    weekday = dates.day_of_week.to_numpy()
    trend = 1.0 + 0.0001 * np.arange(len(dates))
    bus = WEEKLY_BUS[weekday] * trend + rng.normal(0, 15_000, len(dates))
    rail = WEEKLY_RAIL[weekday] * trend + rng.normal(0, 12_000, len(dates))
    return pd.DataFrame(
        {
            "service_date": dates.astype("datetime64[ns]"),
            "day_type": day_types(dates).astype(str),
            "bus": bus.round().astype("int64"),
            "rail": rail.round().astype("int64"),
        }
    )


def as_raw_csv(clean: pd.DataFrame) -> str:
    """The clean frame written back in the portal's raw format (MM/DD/YYYY, total_rides)."""
    raw = pd.DataFrame(
        {
            "service_date": clean["service_date"].dt.strftime("%m/%d/%Y"),
            "day_type": clean["day_type"],
            "bus": clean["bus"],
            "rail_boardings": clean["rail"],
            "total_rides": clean["bus"] + clean["rail"],
        }
    )
    return raw.to_csv(index=False)
