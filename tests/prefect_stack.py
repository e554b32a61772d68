"""A real Prefect server (and worker) on 127.0.0.1 for end-to-end tests, and a throwaway
PostgreSQL cluster for the server's database."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from glob import glob
from pathlib import Path

import httpx

from tests.conftest import REPO

BIN = Path(sys.executable).parent
SERVER_START_TIMEOUT = 180
RUN_TIMEOUT = 900


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class PrefectStack:
    """A server and a worker on 127.0.0.1 with their own PREFECT_HOME."""

    def __init__(self, tmp: Path, storage: str) -> None:
        port = free_port()
        self.api = f"http://127.0.0.1:{port}/api"
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(tmp / "prefect-home"),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "RIDERSHIP_STORAGE": storage,
            "RIDERSHIP_RNN_MODELS": "",
            "RIDERSHIP_WORKERS": "2",
        }
        self.processes: list[subprocess.Popen] = []

    def start(self, *args: str, log: str) -> subprocess.Popen:
        handle = open(self.logs / log, "w")
        process = subprocess.Popen(
            [str(BIN / "prefect"), *args], cwd=REPO, env=self.env, stdout=handle,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.processes.append(process)
        return process

    def run(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [str(BIN / "prefect"), "--no-prompt", *args], cwd=REPO, env=self.env,
            capture_output=True, text=True, timeout=timeout,
        )
        assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start_server(self, log: str = "server.log") -> subprocess.Popen:
        """Start the server (again, after a stop: same port, same PREFECT_HOME and database)."""
        server = self.start("server", "start", "--host", "127.0.0.1", "--port", self.env["PREFECT_SERVER_API_PORT"], log=log)
        self.wait_healthy()
        return server

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise AssertionError(f"prefect server not healthy after {SERVER_START_TIMEOUT}s: {self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.iterdir()))

    def shutdown(self) -> None:
        for process in reversed(self.processes):
            stop(process)




def postgres_bin() -> Path | None:
    """Debian's PostgreSQL server binaries, if installed."""
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temp folder, run as the ``postgres`` user on 127.0.0.1."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="ridership-pg-"))
        self.url = f"postgresql+asyncpg://prefect@127.0.0.1:{self.port}/prefect"

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        os.chmod(self.folder, 0o755)
        shutil.chown(self.folder, "postgres", "postgres")
        data = str(self.folder / "data")
        self._as_postgres(str(self.bin / "initdb"), "-D", data, "-A", "trust", "-U", "prefect")
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", data, "-l", str(self.folder / "server.log"), "-w", "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200", "start",
        )
        self._as_postgres(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "prefect", "prefect")

    def stop(self) -> None:
        try:
            self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
