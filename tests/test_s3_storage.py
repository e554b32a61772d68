"""The job on a real object store: moto's S3 server on 127.0.0.1, the `ridership` command run as
subprocesses with RIDERSHIP_STORAGE=s3://bucket/prefix, and the forecasts read back through the
same endpoint with pyarrow and DuckDB, the way a consumer of the forecast contract would.

The endpoint and credentials reach every client through the standard AWS variables
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION): botocore, which
s3fs sits on, reads them itself, so the job needs no setting of its own for them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from pyarrow import fs as pafs

from storage import Store
from tests.prefect_stack import free_port, stop
from tests.synthetic import as_raw_csv, synthetic_clean

s3fs = pytest.importorskip("s3fs", reason="s3fs is in the dev and s3 extras: make venv installs it")

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
BUCKET = "ridership"
STORAGE = f"s3://{BUCKET}/job"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
# Variables that would point botocore at a real account or profile instead of the test server.
FOREIGN_AWS = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL_S3")
RUN_DATES = ("2019-03-01", "2019-03-03")
MODELS = ("naive", "sarima")
SERIES = ("bus", "rail")
HORIZON = 14


@pytest.fixture
def s3_endpoint(tmp_path: Path, monkeypatch) -> str:
    """moto's S3 server with one empty bucket; this process's AWS variables point at it."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    for name in FOREIGN_AWS:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)
    # fsspec reuses S3FileSystem instances across calls; one made for another endpoint must not
    # be handed back here.
    s3fs.S3FileSystem.clear_instance_cache()
    log = open(tmp_path / "moto.log", "w")
    server = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(endpoint, timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, f"moto server did not start: {(tmp_path / 'moto.log').read_text()}"
                assert server.poll() is None, f"moto server exited: {(tmp_path / 'moto.log').read_text()}"
                time.sleep(0.5)
        s3fs.S3FileSystem().mkdir(BUCKET)
        yield endpoint
    finally:
        stop(server)
        log.close()
        s3fs.S3FileSystem.clear_instance_cache()


def ridership(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(BIN / "ridership"), *args], env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, f"ridership {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-5000:]}"
    return done.stdout


def test_ingest_backfill_report_on_s3_and_read_back(s3_endpoint: str, prefect_api_url: str, tmp_path: Path):
    clean = synthetic_clean()
    source = tmp_path / "raw.csv"
    source.write_text(as_raw_csv(clean))
    # os.environ already holds the endpoint and credentials (the fixture set them).
    env = {
        **os.environ, "RIDERSHIP_STORAGE": STORAGE, "RIDERSHIP_SOURCE": str(source),
        "PREFECT_API_URL": prefect_api_url, "RIDERSHIP_RNN_MODELS": "", "RIDERSHIP_WORKERS": "2",
    }

    ingested = ridership("ingest", env=env)
    assert f"clean rows           {len(clean):,}" in ingested, ingested
    first, last = RUN_DATES
    before_last = str((pd.Timestamp(last) - pd.Timedelta(days=1)).date())
    ridership("backfill", "--start", first, "--end", before_last, "--models", ",".join(MODELS), env=env)
    # A second backfill finds what the first stored by listing the bucket, and adds only the rest.
    resumed = ridership("backfill", "--start", first, "--end", last, "--models", ",".join(MODELS), env=env)
    for model in MODELS:
        assert f"{model:<14} forecast     1   already stored     2" in resumed, resumed
    reported = ridership("report", env=env)
    assert f"report:    {STORAGE}/reports/" in reported, reported

    store = Store.open(STORAGE)
    pd.testing.assert_frame_equal(store.ridership.read_clean(), clean, check_dtype=False)
    assert len(store.ridership.raw_snapshots()) == 1
    cutoffs = pd.date_range(first, last) - pd.Timedelta(days=1)
    forecasts = store.forecasts.read()
    assert len(forecasts) == len(cutoffs) * len(MODELS) * len(SERIES) * HORIZON * 2  # each model and its @raw
    assert set(forecasts["cutoff"]) == set(cutoffs)
    assert not store.metrics.read().empty
    report_day = clean["service_date"].max() + pd.Timedelta(days=1)  # `report` with no dates
    assert "report.md" in store.reports.files(report_day)
    leftovers = [p for p in s3fs.S3FileSystem().find(BUCKET) if "/.tmp-" in p]
    assert not leftovers, f"temporary objects left behind by atomic writes: {leftovers}"

    # each model and its bands as forecast (<model>@raw, the calibration step's)
    expected = {(c.date(), m, s) for c in cutoffs for m in [*MODELS, *(f"{x}@raw" for x in MODELS)] for s in SERIES}
    host = s3_endpoint.removeprefix("http://")
    s3 = pafs.S3FileSystem(
        endpoint_override=host, scheme="http", region=CREDENTIALS["AWS_DEFAULT_REGION"],
        access_key=CREDENTIALS["AWS_ACCESS_KEY_ID"], secret_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    partitioning = ds.partitioning(pa.schema([("cutoff", pa.date32()), ("model", pa.string())]), flavor="hive")
    table = ds.dataset(
        f"{STORAGE.removeprefix('s3://')}/forecasts", filesystem=s3, format="parquet", partitioning=partitioning,
    ).to_table()
    assert table.num_rows == len(expected) * HORIZON
    groups = table.group_by(["cutoff", "model", "unique_id"]).aggregate([("h", "count")]).to_pylist()
    assert {(g["cutoff"], g["model"], g["unique_id"]) for g in groups} == expected
    assert {g["h_count"] for g in groups} == {HORIZON}

    # DuckDB's own S3 support is its httpfs extension, which it downloads on first use; with no
    # internet beyond package registries that fails, so DuckDB reads through s3fs instead.
    con = duckdb.connect()
    con.register_filesystem(s3fs.S3FileSystem(endpoint_url=s3_endpoint))
    rows = con.sql(
        f"select cutoff, model, unique_id, count(*) from read_parquet('{STORAGE}/forecasts/**/*.parquet', "
        "hive_partitioning=true) group by all"
    ).fetchall()
    assert {(c, m, s) for c, m, s, _ in rows} == expected
    assert {n for *_, n in rows} == {HORIZON}
