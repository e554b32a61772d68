"""Every expected failure of the ``ridership`` command: one line naming the problem, the
documented exit code, no traceback (Prefect's console logging included), nothing stored lost.
An unexpected error (a corrupt store) keeps its traceback."""

from __future__ import annotations

import json
import os
import subprocess
import time
import sys
from pathlib import Path

import pytest

from schemas.errors import DegradedRun, InvalidInput, Unavailable
from storage import Store
from tests.synthetic import as_raw_csv, synthetic_clean
from tests.test_source import closed_port

RIDERSHIP = str(Path(sys.executable).parent / "ridership")


def refused_url() -> str:
    return f"http://127.0.0.1:{closed_port()}/rows.csv"


# (case, arguments, extra environment, expected exit code, words the one line must contain)
CASES = [
    ("source refused", ["ingest", "--source", "{refused}"], {}, Unavailable.exit_code, "unavailable: http://127.0.0.1"),
    ("source missing", ["ingest", "--source", "{tmp}/missing.csv"], {}, Unavailable.exit_code, "No such file"),
    ("file rejected", ["ingest", "--source", "{tmp}/wrong.csv"], {}, InvalidInput.exit_code, "rejected: {tmp}/wrong.csv: missing columns"),
    ("end before start", ["backfill", "--start", "2019-03-05", "--end", "2019-03-01"], {}, InvalidInput.exit_code, "end 2019-03-01 is before start 2019-03-05"),
    ("unknown model", ["backfill", "--start", "2019-03-01", "--end", "2019-03-02", "--models", "naive,prophet"], {}, InvalidInput.exit_code, "unknown model(s) prophet"),
    ("unknown series", ["backfill", "--start", "2019-03-01", "--end", "2019-03-02", "--series", "rail,tram"], {}, InvalidInput.exit_code, "unknown series tram"),
    ("bad train days", ["backfill", "--start", "2019-03-01", "--end", "2019-03-02", "--train-days", "0"], {}, InvalidInput.exit_code, "train_days must be at least 1"),
    ("report range reversed", ["report", "--start", "2019-03-05", "--end", "2019-03-01"], {}, InvalidInput.exit_code, "end 2019-03-01 is before start"),
    ("unknown model to retrain", ["retrain", "--models", "gpt"], {}, InvalidInput.exit_code, "unknown model(s) gpt"),
    ("storage not writable", ["backfill", "--start", "2019-03-01", "--end", "2019-03-02", "--models", "naive"],
     {"RIDERSHIP_STORAGE": "{tmp}/a-file/storage"}, Unavailable.exit_code, "is not writable"),
    ("no clean data yet", ["backfill", "--start", "2019-03-01", "--end", "2019-03-02", "--models", "naive"],
     {"RIDERSHIP_STORAGE": "{tmp}/empty-storage"}, Unavailable.exit_code, "no clean data under"),
    ("nightly from stale data", ["nightly", "--run-date", "2019-04-10"], {"RIDERSHIP_SOURCE": "{refused}"},
     DegradedRun.exit_code, "degraded: nightly 2019-04-10: forecasts and report written from the last good data"),
    ("storage lease held by another run", ["ingest"], {"RIDERSHIP_STORAGE": "{tmp}/locked-storage", "RIDERSHIP_LOCK_WAIT_S": "2"},
     Unavailable.exit_code, "storage lock 'clean' ({tmp}/locked-storage/locks/clean.lock) is held by other-host:42 (ingest of"),
]  # fmt: skip


@pytest.fixture
def workspace(tmp_path: Path, prefect_api_url: str):
    storage = tmp_path / "storage"
    Store.open(str(storage)).ridership.write_clean(synthetic_clean(end="2019-04-06"))
    (tmp_path / "wrong.csv").write_text("date,riders\n2019-01-08,5\n")
    (tmp_path / "a-file").write_text("not a folder")
    locked = tmp_path / "locked-storage"
    Store.open(str(locked)).ridership.write_clean(synthetic_clean(end="2019-04-06"))
    (locked / "locks").mkdir()
    lease = {"token": "t", "holder": "other-host:42", "purpose": "ingest of portal.csv", "expires_at": time.time() + 3600}
    (locked / "locks" / "clean.lock").write_text(json.dumps(lease))
    env = {
        **os.environ, "PREFECT_API_URL": prefect_api_url, "RIDERSHIP_STORAGE": str(storage),
        "RIDERSHIP_RNN_MODELS": "", "RIDERSHIP_WORKERS": "1", "RIDERSHIP_SOURCE": str(tmp_path / "good.csv"),
    }
    (tmp_path / "good.csv").write_text(as_raw_csv(synthetic_clean(end="2019-04-06")))
    return tmp_path, storage, env


@pytest.mark.parametrize("case, arguments, extra_env, exit_code, words", CASES, ids=[c[0] for c in CASES])
def test_expected_failure_is_one_line_without_traceback(workspace, case, arguments, extra_env, exit_code, words):
    tmp, storage, env = workspace
    values = {"tmp": str(tmp), "refused": refused_url()}
    clean_before = (storage / "clean" / "ridership.parquet").read_bytes()
    run = subprocess.run(
        [RIDERSHIP, *(a.format(**values) for a in arguments)],
        env={**env, **{k: v.format(**values) for k, v in extra_env.items()}},
        capture_output=True, text=True, timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == exit_code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    problem_lines = [line for line in run.stderr.splitlines() if line.startswith(f"ridership {arguments[0]}:")]
    assert len(problem_lines) == 1, run.stderr[-3000:]
    assert words.format(**values) in problem_lines[0]
    assert (storage / "clean" / "ridership.parquet").read_bytes() == clean_before


def test_unexpected_error_keeps_its_traceback(workspace):
    tmp, storage, env = workspace
    (storage / "clean" / "ridership.parquet").write_bytes(b"PAR1 not really parquet")
    run = subprocess.run(
        [RIDERSHIP, "backfill", "--start", "2019-03-01", "--end", "2019-03-02", "--models", "naive"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 1
    assert "Traceback" in run.stderr
