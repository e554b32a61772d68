"""Fetching the source: which failures are retried (timeouts, 5xx) and which fail fast
(unresolvable host, refused connection, 4xx, missing file), against a server on 127.0.0.1."""

from __future__ import annotations

import gzip
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from storage.source import SourceUnavailable, fetch_source


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Answers(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        status = int(self.path.strip("/").split("/")[0])
        body = b"service_date,day_type,bus,rail_boardings,total_rides\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture(scope="module")
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_ok_answer_is_returned(http_server: str):
    assert fetch_source(f"{http_server}/200/rows.csv").startswith(b"service_date,")


@pytest.mark.parametrize("status, transient", [(500, True), (503, True), (429, True), (404, False), (403, False)])
def test_http_errors_are_transient_only_for_5xx_and_429(http_server: str, status: int, transient: bool):
    with pytest.raises(SourceUnavailable) as raised:
        fetch_source(f"{http_server}/{status}/rows.csv")
    assert raised.value.transient is transient
    assert f"HTTP {status}" in str(raised.value)


def test_refused_connection_fails_fast():
    with pytest.raises(SourceUnavailable) as raised:
        fetch_source(f"http://127.0.0.1:{closed_port()}/rows.csv")
    assert raised.value.transient is False


def test_unresolvable_host_fails_fast():
    # `.invalid` never resolves (RFC 6761).
    with pytest.raises(SourceUnavailable) as raised:
        fetch_source("http://ridership-source.invalid/rows.csv")
    assert raised.value.transient is False


def test_missing_file_fails_fast_and_gzip_is_decompressed(tmp_path: Path):
    with pytest.raises(SourceUnavailable) as raised:
        fetch_source(str(tmp_path / "missing.csv"))
    assert raised.value.transient is False
    packed = tmp_path / "rows.csv.gz"
    packed.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    assert fetch_source(str(packed)) == b"a,b\n1,2\n"
