"""Fetching the raw source: an http(s) URL, a local path, or any fsspec URL (``.gz`` and other
compressed files are decompressed by their extension)."""

from __future__ import annotations

import socket
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


def fetch_source(source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The source's bytes (decompressed), read up to ``max_bytes`` only: memory stays bounded
    whatever the source sends. Raises :class:`SourceUnavailable` naming the source, or
    :class:`SourceTooLarge`."""
    try:
        if source.startswith(("http://", "https://")):
            request = urllib.request.Request(source, headers={"User-Agent": "ridership-forecast"})
            with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
                data = response.read(max_bytes + 1)
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


def _reason(error: OSError) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error)
