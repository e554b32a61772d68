"""Fetching the raw source: an http(s) URL, a local path, or any fsspec URL (``.gz`` and other
compressed files are decompressed by their extension)."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import fsspec

from schemas.errors import InvalidInput, Unavailable

DOWNLOAD_TIMEOUT_SECONDS = 120
DEFAULT_MAX_BYTES = 64 * 2**20


class SourceUnavailable(Unavailable):
    """The source could not be fetched. ``transient`` is False where retrying cannot help: a
    missing file, a refused permission, a malformed URL, a host name that does not resolve, a
    refused connection or a 4xx answer. Timeouts, resets and 5xx answers are transient."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def _is_transient(error: OSError) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code >= 500 or error.code == 429
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    # No DNS answer or nobody listening: the next try in a few seconds gets the same answer.
    return not isinstance(reason, (socket.gaierror, ConnectionRefusedError))


class SourceTooLarge(InvalidInput):
    """The source is larger than the configured cap; it was not read past the cap."""


def fetch_source(source: str, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = DOWNLOAD_TIMEOUT_SECONDS) -> bytes:
    """The source's bytes (decompressed), read up to ``max_bytes`` only: memory stays bounded
    whatever the source sends. An HTTP download must finish within ``timeout`` seconds in all
    (a server that stalls or trickles is cut off). Raises :class:`SourceUnavailable` naming the
    source, or :class:`SourceTooLarge`. The answer's content type is not trusted either way:
    the bytes are validated as CSV."""
    try:
        if source.startswith(("http://", "https://")):
            data = _download(source, max_bytes, timeout)
        else:
            with fsspec.open(source, "rb", compression="infer") as handle:
                data = handle.read(max_bytes + 1)
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError) as error:
        raise SourceUnavailable(f"{source}: cannot fetch ({error})", transient=False) from error
    except OSError as error:
        raise SourceUnavailable(f"{source}: cannot fetch ({_reason(error)})", transient=_is_transient(error)) from error
    if len(data) > max_bytes:
        raise SourceTooLarge(f"{source}: larger than {max_bytes / 2**20:g} MiB (RIDERSHIP_MAX_SOURCE_MB); not ingested")
    return data


def _download(url: str, max_bytes: int, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"User-Agent": "ridership-forecast"})
    parts: list[bytes] = []
    size = 0
    with urllib.request.urlopen(request, timeout=timeout) as response:
        while size <= max_bytes:
            # read1 returns what has arrived, so a trickling server cannot hold the loop past the deadline.
            chunk = response.read1(min(2**20, max_bytes + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
            if time.monotonic() > deadline:
                raise TimeoutError(f"download not finished after {timeout:g} s")
    return b"".join(parts)


def _reason(error: OSError) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error)
