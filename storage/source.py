"""Fetching the raw source: an http(s) URL, a local path, or any fsspec URL."""

from __future__ import annotations

import urllib.request

import fsspec

DOWNLOAD_TIMEOUT_SECONDS = 120


class SourceUnavailable(OSError):
    """The source could not be fetched. ``transient`` is False where retrying cannot help
    (a missing file, a refused permission, a malformed URL)."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def fetch_source(source: str) -> bytes:
    """The source's bytes, unchanged. Raises :class:`SourceUnavailable` naming the source."""
    try:
        if source.startswith(("http://", "https://")):
            request = urllib.request.Request(source, headers={"User-Agent": "ridership-forecast"})
            with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
                return response.read()
        with fsspec.open(source, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, PermissionError, IsADirectoryError, ValueError) as error:
        raise SourceUnavailable(f"{source}: cannot fetch ({error})", transient=False) from error
    except OSError as error:
        raise SourceUnavailable(f"{source}: cannot fetch ({error})", transient=True) from error
