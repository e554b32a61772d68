"""A backfill started the way a person starts one: in the Prefect UI, in a real browser.

A real `prefect server`, `prefect deploy --all` and a process worker (tests/prefect_stack.py);
Playwright drives Debian's chromium (`.ci/run` installs it; Playwright's own browser download
needs more than the package registries this project may reach) through Deployments → backfill →
Run → Custom run, checks that the form explains every parameter, fills it, submits, and checks
what the worker's run stored and published.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from storage import Store
from tests.prefect_stack import PrefectStack
from tests.synthetic import synthetic_clean

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra: make venv installs it")

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT_COPY = Path("/tmp/issue9-backfill-form.png")
START, END = "2019-03-01", "2019-03-03"
MODELS = ["naive", "sarima"]
SERIES = ("bus", "rail")
RUN_TIMEOUT = 300
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture
def stack(tmp_path: Path):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it as root with apt-get where it can)")
    storage = str(tmp_path / "storage")
    Store.open(storage).ridership.write_clean(synthetic_clean())
    prefect = PrefectStack(tmp_path, storage)
    try:
        prefect.start_server()
        prefect.run("work-pool", "create", "ridership-local", "--type", "process")
        prefect.run("deploy", "--all")
        prefect.start("worker", "start", "--pool", "ridership-local", log="worker.log")
        yield prefect
    finally:
        prefect.shutdown()


def fill_custom_run_form(page, ui: str, deployment: dict, screenshot: Path) -> None:
    expect = sync_api.expect
    page.goto(f"{ui}/deployments/deployment/{deployment['id']}")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Custom run", exact=True).click()
    expect(page.get_by_text("Parameters", exact=True)).to_be_visible()

    # Every parameter's description, as deployed, is shown beside its field.
    for name, spec in deployment["parameter_openapi_schema"]["properties"].items():
        assert spec.get("description"), f"{name} was deployed without a description"
        expect(page.get_by_text(spec["description"], exact=True)).to_be_visible()

    def field(label: str):
        return page.locator(".schema-form-property").filter(has=page.get_by_text(label, exact=True)).first

    for label, day in (("start", START), ("end", END)):
        field(label).locator(".p-date-button__control").click()
        picker = page.locator(".p-date-picker")
        picker.locator("input[type=date]").fill(day)
        picker.get_by_role("button", name="Apply").click()
    expect(field("start")).to_contain_text("Mar 1st, 2019")
    expect(field("end")).to_contain_text("Mar 3rd, 2019")

    models = field("models (Optional)")
    models.get_by_role("button", name="list", exact=True).click()
    # The multi-select opens from the keyboard; a click only focuses it.
    models.locator(".p-select-button__control").press("ArrowDown")
    options = page.get_by_role("listbox")
    for model in MODELS:
        options.get_by_role("option", name=model, exact=True).click()
    page.get_by_text("Run Name", exact=True).click()  # closes the option list
    expect(options).to_be_hidden()
    for model in MODELS:
        expect(models.get_by_text(model, exact=True)).to_be_visible()

    page.screenshot(path=str(screenshot), full_page=True)
    shutil.copyfile(screenshot, SCREENSHOT_COPY)
    page.get_by_role("button", name="Submit", exact=True).click()
    # (The UI mounts two toast containers, so the same toast is found twice.)
    # The toast waits for the API's answer, which takes seconds on a loaded 2-core runner.
    expect(page.get_by_text("scheduled to start").first).to_be_visible(timeout=30_000)


def wait_for_run(client: httpx.Client, deployment_id: str, stack: PrefectStack) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        runs = client.post("/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment_id]}}}).json()
        assert len(runs) <= 1, f"the form created {len(runs)} runs"
        if runs and runs[0]["state_type"] in TERMINAL:
            return runs[0]
        time.sleep(2)
    raise AssertionError(f"no finished backfill run after {RUN_TIMEOUT}s: {stack.log_tail()}")


def test_backfill_from_the_ui_custom_run_form(stack: PrefectStack, tmp_path: Path):
    client = httpx.Client(base_url=stack.api, timeout=10)
    deployment = client.get("/deployments/name/backfill/backfill").json()
    ui = stack.api.removesuffix("/api")

    with sync_api.sync_playwright() as playwright:
        # Root (as in CI) cannot run chromium's sandbox.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1800})
            fill_custom_run_form(page, ui, deployment, tmp_path / "backfill-form.png")
        finally:
            browser.close()

    run = wait_for_run(client, deployment["id"], stack)
    assert run["state_type"] == "COMPLETED", f"{run['state_name']}: {run['state']['message']}\n{stack.log_tail()}"
    # The form sends the fields left alone too, with their defaults.
    assert run["parameters"] == {
        "start": START, "end": END, "models": MODELS, "series": None, "overwrite": False,
        "train_start": None, "train_days": None,
    }

    forecasts = Store.open(stack.env["RIDERSHIP_STORAGE"]).forecasts.read()
    cutoffs = set(pd.date_range(START, END) - pd.Timedelta(days=1))
    for model in MODELS:
        for unique_id in SERIES:
            rows = forecasts[(forecasts["model"] == model) & (forecasts["unique_id"] == unique_id)]
            assert set(rows["cutoff"]) == cutoffs, (model, unique_id)
    assert set(forecasts["run_id"]) == {run["id"]}

    artifacts = client.post("/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
    assert {"ridership-report", "ridership-leaderboard"} <= {a["key"] for a in artifacts}
