"""Calendar flags for a ridge window: computed afresh vs from the per-span-of-years cache.

    python bench/bench_calendar_flags.py [--repeats N]

A walk-forward asks ``calendar_features`` for nearly the same 7-year window at every cutoff (ridge:
four times per series and cutoff). Before, every call computed every flag over the window; now
``_flags_of_years`` computes them once per span of years and each call slices. Side by side in one
run, median of N repeats over 92 consecutive cutoffs' windows; prints both and their ratio, and
checks the frames are identical.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tasks.core.features import calendar_flags  # noqa: E402
from tasks.core.features.calendar_flags import CALENDAR_FLAGS, _flags_on_consecutive_days, calendar_features  # noqa: E402


def afresh(index: pd.DatetimeIndex) -> pd.DataFrame:
    """The computation without the cache: every flag over the window padded by three days."""
    padded = pd.date_range(index.min() - pd.Timedelta(days=3), index.max() + pd.Timedelta(days=3), freq="D")
    flags = _flags_on_consecutive_days(padded)
    positions = padded.get_indexer(index)
    return pd.DataFrame({name: flags[name][positions].astype(float) for name in CALENDAR_FLAGS}, index=index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    windows = [pd.date_range(end=cutoff, periods=2557, freq="D") for cutoff in pd.date_range("2019-02-28", periods=92, freq="D")]
    for window in windows[:3]:
        pd.testing.assert_frame_equal(afresh(window), calendar_features(window), check_exact=True)
    timings: dict[str, list[float]] = {"afresh": [], "cached": []}
    for _ in range(args.repeats):
        calendar_flags._flags_of_years.cache_clear()  # each repeat pays its own first computation
        for name, function in (("afresh", afresh), ("cached", calendar_features)):
            start = time.perf_counter()
            for window in windows:
                function(window)
            timings[name].append(time.perf_counter() - start)
    fresh, cached = (statistics.median(timings[n]) for n in ("afresh", "cached"))
    print(f"92 windows of 2,557 days, median of {args.repeats}: afresh {fresh:.3f} s, cached {cached:.3f} s, "
          f"ratio {fresh / cached:.1f}x; frames identical")
    print(f"per call: {1000 * fresh / len(windows):.1f} ms vs {1000 * cached / len(windows):.1f} ms "
          f"({np.round(np.array(timings['afresh']) / np.array(timings['cached']), 1).tolist()} per repeat)")


if __name__ == "__main__":
    main()
