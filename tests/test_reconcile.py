"""Issue 20, item 3: reconciliation of a one-level hierarchy (pure) — the projection against the
textbook MinT formula and hand-computed examples, coherence at every horizon, bottom-up, the
shrunk covariance against its definition, no leakage of errors the cutoff could not know, the
fallback and skip rules, and the coherence table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from schemas.forecasts import QUANTILE_COLUMNS
from tasks.core.evaluation.coherence import coherence_blocks, coherence_section, coherence_table
from tasks.core.models.reconcile import (
    ReconcileSpec, bottom_up, matured_errors, project, reconcile_cutoff, reconcile_forecasts, shrunk_covariance,
    structural_weights,
)  # fmt: skip

PARENT = "rail_entries"
CHILDREN = ["station:1", "station:2", "station:3"]
NODES = [PARENT, *CHILDREN]
CUTOFF = pd.Timestamp("2019-06-30")
H = 14


def textbook_mint(base: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ỹ = S (Sᵀ W⁻¹ S)⁻¹ Sᵀ W⁻¹ ŷ, written out with the summing matrix."""
    n = base.shape[1] - 1
    s = np.vstack([np.ones((1, n)), np.eye(n)])
    w_inv = np.linalg.inv(w)
    p = np.linalg.solve(s.T @ w_inv @ s, s.T @ w_inv)
    return (s @ p @ base.T).T


def test_wls_struct_splits_the_gap_half_to_the_parent_and_evenly_to_the_children():
    # parent 100, children 30 + 50 = 80: gap 20; W = diag(2, 1, 1) -> parent -10, children +5.
    reconciled = project(np.array([[100.0, 30.0, 50.0]]), structural_weights(2))
    np.testing.assert_allclose(reconciled, [[90.0, 35.0, 55.0]], rtol=1e-12)


def test_mint_on_hand_examples_diagonal_and_full_covariance():
    base = np.array([[100.0, 30.0, 50.0]])
    # diag(4, 1, 3): the gap of 20 moves each node by its weight / 8.
    np.testing.assert_allclose(project(base, np.array([4.0, 1.0, 3.0])), [[90.0, 32.5, 57.5]], rtol=1e-12)
    # parent and first child covary: W c = (1, -1, -1), c'Wc = 3, every node moves 20/3.
    full = np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(project(base, full), [[100 - 20 / 3, 30 + 20 / 3, 50 + 20 / 3]], rtol=1e-12)
    np.testing.assert_allclose(project(base, full), textbook_mint(base, full), rtol=1e-12)


def test_the_projection_equals_the_textbook_formula_for_any_covariance():
    rng = np.random.default_rng(7)
    for n in (1, 3, 40):
        base = rng.uniform(10, 1000, size=(H, n + 1))
        root = rng.normal(size=(n + 1, n + 1))
        w = root @ root.T + np.eye(n + 1)
        np.testing.assert_allclose(project(base, w), textbook_mint(base, w), rtol=1e-9)
        diagonal = rng.uniform(0.5, 5, n + 1)
        np.testing.assert_allclose(project(base, diagonal), textbook_mint(base, np.diag(diagonal)), rtol=1e-9)


def test_shrunk_covariance_follows_schafer_strimmer_written_out():
    rng = np.random.default_rng(3)
    errors = rng.normal(size=(12, 4)) @ rng.normal(size=(4, 4))
    covariance, intensity = shrunk_covariance(errors)
    n, p = errors.shape
    sample = np.cov(errors, rowvar=False)
    x = (errors - errors.mean(axis=0)) / np.sqrt(np.diag(sample))
    numerator = denominator = 0.0
    for i in range(p):
        for j in range(p):
            if i == j:
                continue
            w = x[:, i] * x[:, j]
            numerator += n / (n - 1) ** 3 * ((w - w.mean()) ** 2).sum()  # the estimated Var(r_ij)
            denominator += (n / (n - 1) * w.mean()) ** 2  # r_ij squared
    expected = min(max(numerator / denominator, 0.0), 1.0)
    assert 0 < intensity < 1
    assert intensity == pytest.approx(expected, rel=1e-9)
    off = ~np.eye(p, dtype=bool)
    np.testing.assert_allclose(np.diag(covariance), np.diag(sample), rtol=1e-12)
    np.testing.assert_allclose(covariance[off], (1 - intensity) * sample[off], rtol=1e-12)


def test_the_constant_correlation_target_keeps_the_mean_correlation():
    rng = np.random.default_rng(5)
    common = rng.normal(size=(30, 1))
    errors = common + 0.8 * rng.normal(size=(30, 5))  # every pair shares the common shock
    covariance, intensity = shrunk_covariance(errors, "constant_correlation")
    n, p = errors.shape
    sample = np.cov(errors, rowvar=False)
    scale = np.sqrt(np.diag(sample))
    r = sample / np.outer(scale, scale)
    off = ~np.eye(p, dtype=bool)
    r_bar = r[off].mean()
    x = (errors - errors.mean(axis=0)) / scale
    variance = sum(
        n / (n - 1) ** 3 * ((x[:, i] * x[:, j] - (x[:, i] * x[:, j]).mean()) ** 2).sum()
        for i in range(p) for j in range(p) if i != j
    )  # fmt: skip
    assert r_bar > 0.3
    assert intensity == pytest.approx(min(variance / ((r[off] - r_bar) ** 2).sum(), 1.0), rel=1e-9)
    expected = (1 - intensity) * sample + intensity * r_bar * np.outer(scale, scale)
    np.fill_diagonal(expected, np.diag(sample))
    np.testing.assert_allclose(covariance, expected, rtol=1e-12)
    # Shrunk towards 0 instead, the common shock is mostly lost: the sum of the errors looks
    # less variable than it is.
    ones = np.ones(p)
    diagonal, _ = shrunk_covariance(errors)
    assert ones @ diagonal @ ones < ones @ covariance @ ones <= ones @ sample @ ones * 1.0000001


def test_a_node_without_error_variance_is_left_as_forecast():
    errors = np.array([[1.0, 0.0, 2.0], [-2.0, 0.0, 1.0], [0.5, 0.0, -1.0]])
    covariance, _ = shrunk_covariance(errors)
    assert np.isfinite(covariance).all() and (covariance[1] == 0).all()
    reconciled = project(np.array([[100.0, 30.0, 50.0]]), covariance)
    assert reconciled[0, 1] == 30.0 and reconciled[0, 0] == pytest.approx(reconciled[0, 1:].sum(), rel=1e-12)


# -- frames ----------------------------------------------------------------------------------------


QUANTILE_OFFSETS = dict(zip(QUANTILE_COLUMNS, (-20.0, -15.0, -10.0, -4.0, 0.0, 4.0, 10.0, 15.0, 20.0)))


def contract_rows(cutoff: pd.Timestamp, values: dict[str, np.ndarray], model: str = "ridge") -> pd.DataFrame:
    parts = []
    for unique_id, y_hat in values.items():
        h = np.arange(1, len(y_hat) + 1)
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": unique_id, "cutoff": cutoff, "ds": cutoff + pd.to_timedelta(h, unit="D"), "h": h,
                    "model": model, "y_hat": y_hat, "y_lo_80": y_hat - 10, "y_hi_80": y_hat + 10,
                    "y_lo_95": y_hat - 20, "y_hi_95": y_hat + 20, "model_version": f"v-{unique_id}",
                    **{column: y_hat + offset for column, offset in QUANTILE_OFFSETS.items()},
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def incoherent_base(rng: np.random.Generator, cutoff: pd.Timestamp = CUTOFF) -> pd.DataFrame:
    children = {c: rng.uniform(1_000, 20_000, H) for c in CHILDREN}
    parent = sum(children.values()) * rng.uniform(0.9, 1.1, H)
    return contract_rows(cutoff, {PARENT: parent, **children})


def history_of_forecasts(rng: np.random.Generator, days: int = 60) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily cutoffs before CUTOFF with their forecasts, and actuals for every day to CUTOFF + H."""
    cutoffs = pd.date_range(end=CUTOFF - pd.Timedelta(days=1), periods=days)
    past = pd.concat([incoherent_base(rng, c) for c in cutoffs], ignore_index=True)
    dates = pd.date_range(cutoffs[0], CUTOFF + pd.Timedelta(days=H))
    actuals = pd.DataFrame(
        [(u, d, float(rng.uniform(1_000, 20_000))) for u in NODES for d in dates], columns=["unique_id", "ds", "y"]
    )
    return past, actuals


def gap(rows: pd.DataFrame) -> pd.Series:
    wide = rows.pivot(index="h", columns="unique_id", values="y_hat")
    return (wide[PARENT] - wide[CHILDREN].sum(axis=1)).abs() / wide[PARENT].abs()


@pytest.mark.parametrize("method", ["bottom_up", "wls_struct", "mint_shrink", "mint_shrink_cc"])
def test_every_method_is_coherent_at_every_horizon_and_keeps_its_bands_nested(method):
    rng = np.random.default_rng(11)
    past, actuals = history_of_forecasts(rng)
    base = incoherent_base(rng)
    outcome = reconcile_cutoff(ReconcileSpec(method=method), base, past, actuals, PARENT, CHILDREN, CUTOFF)
    rows = outcome.rows
    assert outcome.skipped is None and len(rows) == len(base)
    other = contract_rows(CUTOFF, {"bus": np.full(H, 5.0), "station:4": np.full(H, 7.0)})  # not a node: left out
    with_other = reconcile_cutoff(ReconcileSpec(method=method), pd.concat([base, other]), past, actuals, PARENT, CHILDREN, CUTOFF)
    pd.testing.assert_frame_equal(with_other.rows, rows)
    assert gap(base).max() > 1e-3  # the base forecasts were not coherent
    assert gap(rows).max() < 1e-9
    assert set(rows["model"]) == {"ridge@reconciled"}
    moved = rows.set_index(["unique_id", "h"])["y_hat"] - base.set_index(["unique_id", "h"])["y_hat"]
    for bound, width in (("y_lo_80", -10), ("y_hi_80", 10), ("y_lo_95", -20), ("y_hi_95", 20), *QUANTILE_OFFSETS.items()):
        np.testing.assert_allclose(rows[bound] - rows["y_hat"], width, atol=1e-6)
    assert moved.abs().max() > 0
    assert rows["model_version"].str.startswith(f"reconciled[{method}").all()


def test_bottom_up_keeps_the_children_and_sums_them():
    base = incoherent_base(np.random.default_rng(5))
    rows = reconcile_cutoff(ReconcileSpec(method="bottom_up"), base, base.iloc[0:0], base.iloc[0:0], PARENT, CHILDREN, CUTOFF).rows
    by = rows.set_index(["unique_id", "h"])["y_hat"]
    was = base.set_index(["unique_id", "h"])["y_hat"]
    for child in CHILDREN:
        assert (by[child] == was[child]).all()
    np.testing.assert_allclose(by[PARENT], sum(was[c] for c in CHILDREN), rtol=1e-12)
    np.testing.assert_array_equal(bottom_up(np.array([[100.0, 30.0, 50.0]])), [[80.0, 30.0, 50.0]])


@pytest.mark.parametrize("method", ["mint_shrink", "mint_shrink_cc"])
def test_mint_uses_only_errors_the_cutoff_could_know(method):
    rng = np.random.default_rng(21)
    past, actuals = history_of_forecasts(rng)
    base = incoherent_base(rng)
    spec = ReconcileSpec(method=method)
    first = reconcile_cutoff(spec, base, past, actuals, PARENT, CHILDREN, CUTOFF).rows
    assert f"{method} lambda=" in first["model_version"].iloc[0]
    later_target = past["ds"] > CUTOFF
    perturbed = past.assign(y_hat=past["y_hat"].where(~later_target, past["y_hat"] * 3 + 1_000))
    unknown = actuals.assign(y=actuals["y"].where(actuals["ds"] <= CUTOFF, -5.0))
    again = reconcile_cutoff(spec, base, perturbed, unknown, PARENT, CHILDREN, CUTOFF).rows
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    # ...while an error it could know does change the result (the test can fail).
    known = past.index[(past["ds"] == CUTOFF) & (past["unique_id"] == "station:2")]
    moved = past.copy()
    moved.loc[known, "y_hat"] += 50_000
    changed = reconcile_cutoff(spec, base, moved, actuals, PARENT, CHILDREN, CUTOFF).rows
    assert not np.array_equal(changed["y_hat"].to_numpy(), first["y_hat"].to_numpy())


def test_a_publication_lag_moves_the_last_known_target_back():
    rng = np.random.default_rng(2)
    past, actuals = history_of_forecasts(rng)
    errors = matured_errors(past, actuals, NODES, CUTOFF, CUTOFF - pd.Timedelta(days=3), 56)
    full = matured_errors(past, actuals, NODES, CUTOFF, CUTOFF, 56)
    assert 0 < len(errors) < len(full)


def test_too_few_matured_errors_fall_back_to_wls_struct_and_say_so():
    rng = np.random.default_rng(4)
    past, actuals = history_of_forecasts(rng, days=3)  # 1 + 2 + 3 matured targets: 6 rows < 28
    base = incoherent_base(rng)
    rows = reconcile_cutoff(ReconcileSpec(method="mint_shrink"), base, past, actuals, PARENT, CHILDREN, CUTOFF).rows
    wls = reconcile_cutoff(ReconcileSpec(method="wls_struct"), base, past, actuals, PARENT, CHILDREN, CUTOFF).rows
    assert rows["model_version"].str.contains("mint_shrink had 6 complete error rows < 28").all()
    np.testing.assert_array_equal(rows["y_hat"].to_numpy(), wls["y_hat"].to_numpy())


def test_a_cutoff_missing_a_child_is_skipped_with_the_reason():
    rng = np.random.default_rng(8)
    base = incoherent_base(rng)
    before = base[~((base["unique_id"] == "station:2") & (base["cutoff"] == CUTOFF))]
    stored = pd.concat([before, incoherent_base(rng, CUTOFF + pd.Timedelta(days=1))], ignore_index=True)
    children_at = {CUTOFF: CHILDREN, CUTOFF + pd.Timedelta(days=1): CHILDREN}
    rows, skipped = reconcile_forecasts(ReconcileSpec(method="wls_struct"), stored, stored.iloc[0:0][[]], PARENT, children_at)
    assert skipped == {CUTOFF: "1 of 3 active children of rail_entries have no forecast (station:2)"}
    assert set(rows["cutoff"]) == {CUTOFF + pd.Timedelta(days=1)}


def test_the_coherence_table_reports_before_and_after_per_model():
    rng = np.random.default_rng(9)
    base = incoherent_base(rng)
    naive = contract_rows(CUTOFF, {u: np.full(H, 100.0) for u in CHILDREN} | {PARENT: np.full(H, 300.0)}, model="naive")
    reconciled = reconcile_cutoff(ReconcileSpec(method="wls_struct"), base, base.iloc[0:0], base, PARENT, CHILDREN, CUTOFF).rows
    table = coherence_table(pd.concat([base, naive, reconciled], ignore_index=True), [(PARENT, "station:*")], CUTOFF)
    assert table[["parent", "model", "children"]].values.tolist() == [[PARENT, "naive", 3], [PARENT, "ridge", 3]]
    ridge = table.set_index("model").loc["ridge"]
    assert ridge["before"] == pytest.approx(gap(base).max(), rel=1e-12) and ridge["after"] < 1e-9
    assert table.set_index("model").loc["naive", "before"] == 0 and np.isnan(table.set_index("model").loc["naive", "after"])
    blocks = coherence_blocks(table, CUTOFF)
    assert blocks[-1].rows[1][:3] == [PARENT, "ridge", "3"]
    assert coherence_blocks(table.iloc[0:0], CUTOFF) == []
    earlier = contract_rows(CUTOFF - pd.Timedelta(days=1), {PARENT: np.full(H, 1.0)})
    section = coherence_section(pd.concat([earlier, base, reconciled], ignore_index=True), [(PARENT, "station:*")])
    assert str(CUTOFF.date()) in section[1].text and section[2].rows[0][1] == "ridge"  # the latest cutoff
    assert coherence_section(base, []) == []
