"""The ensemble core: exact combinations, weights from matured past errors only, intervals,
members missing at a cutoff, and no leakage from later cutoffs or later actuals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from schemas.forecasts import EngineForecastSchema
from tasks.core.models.ensemble import EnsembleSpec, combine_at_cutoff, ensemble_forecasts, member_weights

C0 = pd.Timestamp("2024-03-10")


def member_rows(model: str, cutoff: pd.Timestamp, level: float, horizon: int = 3, version: str = "v1", band: float | None = 10.0) -> pd.DataFrame:
    h = np.arange(1, horizon + 1)
    y_hat = level + h
    nan = np.full(horizon, np.nan)
    return pd.DataFrame(
        {
            "unique_id": "rail", "cutoff": cutoff, "ds": cutoff + pd.to_timedelta(h, unit="D"), "h": h.astype(np.int64),
            "model": model, "y_hat": y_hat.astype(float),
            "y_lo_80": y_hat - band if band else nan, "y_hi_80": y_hat + band if band else nan,
            "y_lo_95": y_hat - 2 * band if band else nan, "y_hi_95": y_hat + 2 * band if band else nan,
            "model_version": f"{model}-{version}",
        }
    )


def test_mean_and_median_combine_exactly_and_name_every_member_version():
    members = pd.concat([member_rows("a", C0, 100), member_rows("b", C0, 200), member_rows("c", C0, 600)])
    mean = combine_at_cutoff(EnsembleSpec(("a", "b", "c"), "mean"), members, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, "rail", C0)
    assert mean["y_hat"].tolist() == pytest.approx([301.0, 302.0, 303.0])
    median = combine_at_cutoff(EnsembleSpec(("a", "b", "c"), "median"), members, {}, "rail", C0)
    assert median["y_hat"].tolist() == [201.0, 202.0, 203.0]
    assert median["model_version"].iloc[0] == "ensemble[median](a=a-v1;b=b-v1;c=c-v1)"
    EngineForecastSchema.validate(mean)


def test_inverse_mae_weights_come_from_matured_errors_only():
    spec = EnsembleSpec(("a", "b"), "inverse_mae", lookback_days=56, min_scored=2)
    past = pd.concat([member_rows("a", C0 - pd.Timedelta(days=5), 0), member_rows("b", C0 - pd.Timedelta(days=5), 0)])
    # a's forecasts are 1..3 off, b's 4..6 off (mean 2 vs 5): weights 5/7 and 2/7.
    actuals = pd.DataFrame({"unique_id": "rail", "ds": sorted(set(past["ds"])), "y": 0.0})
    past.loc[past["model"] == "b", "y_hat"] += 3
    weights = member_weights(spec, past, actuals, "rail", C0)
    assert weights == pytest.approx({"a": 5 / 7, "b": 2 / 7})
    # Too few scored forecasts: equal weights.
    assert member_weights(EnsembleSpec(("a", "b"), "inverse_mae", min_scored=10), past, actuals, "rail", C0) == {"a": 0.5, "b": 0.5}


def test_bands_contain_the_point_and_missing_bands_stay_missing():
    members = pd.concat([member_rows("a", C0, 100, band=1.0), member_rows("b", C0, 200, band=None)])
    rows = combine_at_cutoff(EnsembleSpec(("a", "b"), "mean"), members, {"a": 0.5, "b": 0.5}, "rail", C0)
    # Only a has a band (centred on 101): widened to contain the ensemble's 151.
    assert (rows["y_lo_80"] <= rows["y_hat"]).all() and (rows["y_hat"] <= rows["y_hi_80"]).all()
    assert (rows["y_lo_95"] <= rows["y_lo_80"]).all() and (rows["y_hi_80"] <= rows["y_hi_95"]).all()
    none = combine_at_cutoff(EnsembleSpec(("b",), "mean"), members, {"b": 1.0}, "rail", C0)
    assert none[["y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]].isna().all().all()


def test_a_member_missing_at_a_cutoff_is_left_out():
    members = member_rows("a", C0, 100)
    rows = combine_at_cutoff(EnsembleSpec(("a", "b"), "mean"), members, {"a": 0.5, "b": 0.5}, "rail", C0)
    assert rows["y_hat"].tolist() == [101.0, 102.0, 103.0]
    assert rows["model_version"].iloc[0] == "ensemble[mean](a=a-v1)"
    assert combine_at_cutoff(EnsembleSpec(("b",), "mean"), members, {}, "rail", C0).empty


def test_no_leakage_from_later_cutoffs_or_later_actuals():
    spec = EnsembleSpec(("a", "b"), "inverse_mae", lookback_days=56, min_scored=2)
    cutoffs = [C0 - pd.Timedelta(days=d) for d in (9, 6, 3, 0)] + [C0 + pd.Timedelta(days=3)]
    stored = pd.concat([member_rows(m, c, 100 * (i + 1) + k) for k, c in enumerate(cutoffs) for i, m in enumerate("ab")])
    days = pd.date_range(C0 - pd.Timedelta(days=20), C0 + pd.Timedelta(days=20))
    actuals = pd.DataFrame({"unique_id": "rail", "ds": days, "y": np.linspace(100, 300, len(days))})
    at_c0 = ensemble_forecasts(spec, stored, actuals, ["rail"], [C0])
    tampered_stored = stored.copy()
    tampered_stored.loc[stored["cutoff"] > C0, "y_hat"] *= 7
    tampered_actuals = actuals.copy()
    tampered_actuals.loc[actuals["ds"] > C0, "y"] = -1e9
    again = ensemble_forecasts(spec, tampered_stored, tampered_actuals, ["rail"], [C0])
    pd.testing.assert_frame_equal(at_c0, again, check_exact=True)
    assert not at_c0.empty and (at_c0["cutoff"] == C0).all()


# Each date filter on its own. The test above passes as long as any one of them holds: the ensemble
# reads later actuals only through forecasts whose targets are after the cutoff, so each filter
# below is checked where it is the only guard.

SPEC_2 = EnsembleSpec(("a", "b"), "inverse_mae", lookback_days=56, min_scored=2)
PAST_CUTOFFS = [C0 - pd.Timedelta(days=d) for d in (9, 6, 3, 1)]  # C0-1's h=2,3 targets are after C0


def scored_history() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Members a and b forecast at four cutoffs before C0, b further off than a; actuals for C0±20 days."""
    past = pd.concat([member_rows(m, c, 100 + 10 * k + 7 * i) for k, c in enumerate(PAST_CUTOFFS) for i, m in enumerate("ab")])
    days = pd.date_range(C0 - pd.Timedelta(days=20), C0 + pd.Timedelta(days=20))
    actuals = pd.DataFrame({"unique_id": "rail", "ds": days, "y": np.linspace(100, 300, len(days))})
    return past.reset_index(drop=True), actuals


def test_weights_score_only_targets_that_matured_by_the_cutoff():
    """``member_weights`` on its own, handed every actual: forecasts from before the cutoff whose
    targets fall after it (``ds > cutoff``) must not be scored, whatever those actuals are."""
    past, actuals = scored_history()
    assert ((past["cutoff"] < C0) & (past["ds"] > C0)).any()  # immature targets are there to leak
    weights = member_weights(SPEC_2, past, actuals, "rail", C0)
    assert weights["a"] != weights["b"]  # inverse MAE, not the equal-weight fallback
    matured_only = member_weights(SPEC_2, past[past["ds"] <= C0], actuals[actuals["ds"] <= C0], "rail", C0)
    assert weights == matured_only  # exact: the same rows scored in the same order
    tampered = actuals.copy()
    tampered.loc[tampered["ds"] > C0, "y"] = -1e9
    assert member_weights(SPEC_2, past, tampered, "rail", C0) == weights


def test_weights_never_score_rows_from_the_cutoff_or_later():
    """``member_weights``' own filter on the forecast's cutoff (``cutoff < C0``). Contract rows
    from C0 or later have ``ds = cutoff + h > C0``, so the target-date filter drops them too: the
    rows here break that (stamped with cutoffs C0 and C0+3 but targets on or before C0, as a row
    written with the wrong cutoff would be), so that this filter is the only guard."""
    past, actuals = scored_history()
    weights = member_weights(SPEC_2, past, actuals, "rail", C0)
    assert weights["a"] != weights["b"]
    late = pd.concat([member_rows(m, C0 - pd.Timedelta(days=3), 100 + 50 * i) for i, m in enumerate("ab")])
    late["cutoff"] = np.where(late["h"] == 1, C0, C0 + pd.Timedelta(days=3))  # targets C0-2..C0
    late.loc[late["model"] == "a", "y_hat"] += 5_000.0  # would turn the weights towards b
    assert (late["ds"] <= C0).all() and (late["cutoff"] >= C0).all()
    with_late = pd.concat([past, late], ignore_index=True)
    assert member_weights(SPEC_2, with_late, actuals, "rail", C0) == weights


def test_ensemble_forecasts_scores_with_actuals_up_to_each_cutoff_only(monkeypatch):
    """``ensemble_forecasts``' own cut of the actuals (``known``), seen where it is the only guard:
    what it hands ``member_weights`` (whose target-date filter would otherwise hide a leak) must be
    exactly the actuals up to the cutoff being combined, at every cutoff."""
    import tasks.core.models.ensemble as ensemble

    past, actuals = scored_history()
    cutoffs = [C0 - pd.Timedelta(days=2), C0]
    stored = pd.concat([past, *(member_rows(m, c, 100 + 7 * i) for c in cutoffs for i, m in enumerate("ab"))], ignore_index=True)
    seen: dict[pd.Timestamp, pd.DataFrame] = {}
    real_weights = ensemble.member_weights

    def recording_weights(spec, past, actuals, unique_id, cutoff, latest=None, publication_lag=0):
        seen[cutoff] = actuals.copy()
        return real_weights(spec, past, actuals, unique_id, cutoff, latest, publication_lag)

    monkeypatch.setattr(ensemble, "member_weights", recording_weights)
    combined = ensemble.ensemble_forecasts(SPEC_2, stored, actuals, ["rail"], cutoffs)
    assert sorted(seen) == cutoffs and set(combined["cutoff"]) == set(cutoffs)
    for cutoff in cutoffs:
        pd.testing.assert_frame_equal(seen[cutoff], actuals[actuals["ds"] <= cutoff], check_exact=True)
