"""The source misbehaves, served by a local HTTP server on 127.0.0.1 and ingested through the
``ridership`` command: each case ends with the clean store intact (a truncated snapshot never
deletes history), one line for a failure, and retries and timeouts that end on their own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pandas as pd
import pytest

from schemas.errors import InvalidInput, Unavailable
from storage import Store
from tests.synthetic import as_raw_csv, synthetic_clean
from tests.local_http import serving

SERIES = synthetic_clean(start="2019-01-01", end="2019-04-10")
STORED = SERIES[SERIES["service_date"] <= "2019-03-31"].reset_index(drop=True)
FULL = as_raw_csv(SERIES).encode()
HALF = as_raw_csv(SERIES[SERIES["service_date"] >= "2019-02-15"]).encode()  # the older half is gone
HTML = b"<!DOCTYPE html><html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"


class _Source(BaseHTTPRequestHandler):
    hits: dict[str, int] = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        path = self.path.strip("/")
        _Source.hits[path] = _Source.hits.get(path, 0) + 1
        if path == "stall":  # half the body, then nothing
            self._head(200, len(FULL))
            self.wfile.write(FULL[: len(FULL) // 2])
            self.wfile.flush()
            time.sleep(5)
        elif path == "trickle":  # a byte at a time, never done in time
            self._head(200, len(FULL))
            for byte in FULL[:40]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.1)
        elif path == "flaky" and _Source.hits[path] == 1:
            self._head(500, 0)
        else:
            body = {"truncated": HALF, "html": HTML}.get(path, FULL)
            self._head(200, len(body), "text/html" if path in ("html", "wrong-type") else "text/csv")
            self.wfile.write(body)

    def _head(self, status: int, length: int, content_type: str = "text/csv") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    with serving(_Source) as url:
        yield url


# (path, exit code, words of the one line or None, rows after, retries expected)
CASES = [
    ("stall", Unavailable.exit_code, "timed out", len(STORED), 4),
    ("trickle", Unavailable.exit_code, "not finished after 1 s", len(STORED), 4),
    ("truncated", 0, None, len(STORED) + 10, 1),
    ("html", InvalidInput.exit_code, "missing columns", len(STORED), 1),
    ("flaky", 0, None, len(STORED) + 10, 2),
    ("wrong-type", 0, None, len(STORED) + 10, 1),
]


@pytest.mark.parametrize("path, exit_code, words, rows_after, requests", CASES, ids=[c[0] for c in CASES])
def test_misbehaving_source(server: str, tmp_path: Path, prefect_api_url: str, path, exit_code, words, rows_after, requests):
    storage = tmp_path / "storage"
    store = Store.open(str(storage))
    store.ridership.write_clean(STORED)
    env = {
        **os.environ, "PREFECT_API_URL": prefect_api_url, "RIDERSHIP_STORAGE": str(storage),
        "RIDERSHIP_SOURCE_TIMEOUT_S": "1", "RIDERSHIP_SOURCE_RETRY_DELAY_S": "0.1",
    }
    _Source.hits.pop(path, None)
    started = time.monotonic()
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ridership"), "ingest", "--source", f"{server}/{path}"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    elapsed = time.monotonic() - started
    assert run.returncode == exit_code, run.stderr[-3000:]
    assert "Traceback" not in run.stdout + run.stderr
    if words:
        lines = [line for line in run.stderr.splitlines() if line.startswith("ridership ingest:")]
        assert len(lines) == 1 and words in lines[0], run.stderr[-2000:]
    clean = store.ridership.read_clean()
    assert len(clean) == rows_after
    pd.testing.assert_frame_equal(clean.iloc[: len(STORED)], STORED, check_dtype=False)  # nothing deleted or changed
    assert _Source.hits[path] == requests
    assert elapsed < 120  # bounded: 4 tries of at most 1 s plus 0.7 s of backoff, and the CLI's start
