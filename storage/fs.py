"""File-system plumbing shared by every store: fsspec resolution and atomic writes.

Atomicity: a file is written beside its final name under a unique temporary name, then moved
into place. On a local disk the move is ``os.replace`` (atomic on POSIX); on object stores a
single PUT/copy is atomic for readers, so a reader sees the previous object or the new one,
never half of one. A crash mid-write leaves only a ``.tmp-*.partial`` file that readers ignore
(safe to delete).
"""

from __future__ import annotations

import io
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from schemas.errors import InvalidInput, Unavailable

TMP_PREFIX = ".tmp-"
TMP_SUFFIX = ".partial"


@dataclass(frozen=True)
class Root:
    """A storage root: an fsspec file system plus the path of the root inside it."""

    fs: fsspec.AbstractFileSystem
    path: str

    @classmethod
    def from_url(cls, url: str) -> "Root":
        fs, path = fsspec.core.url_to_fs(str(url))
        return cls(fs=fs, path=path.rstrip("/") or "/")

    def join(self, *parts: str) -> str:
        """A path under the root. Parts come from parameters and data (series ids, model names,
        backtest names), so a part that could leave the root or name another file system is
        refused: ``..`` segments, NUL bytes, backslashes and URL schemes."""
        for part in parts:
            if part and (
                "\x00" in part or "\\" in part or "://" in part or any(seg in ("..", ".") for seg in part.split("/"))
            ):
                raise UnsafePath(f"refusing a storage path part that could leave the root: {part!r}")
        return "/".join([self.path, *[p.strip("/") for p in parts if p]])

    def url(self, path: str) -> str:
        """A path as a URL that pandas, pyarrow and DuckDB can open."""
        if isinstance(self.fs, LocalFileSystem):
            return path
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return f"{protocol}://{path}"

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def listdir(self, path: str) -> list[str]:
        """Names (not paths) directly under ``path``; temporary files are hidden."""
        if not self.fs.exists(path):
            return []
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(path, detail=False)]
        return sorted(n for n in names if not n.startswith(TMP_PREFIX))

    def read_bytes(self, path: str) -> bytes:
        return self.fs.cat_file(path)

    def modified(self, path: str) -> float:
        """A file's modification time, seconds since the epoch."""
        return _modified(self.fs.info(path))

    def write_bytes_atomic(self, path: str, data: bytes) -> None:
        parent = path.rsplit("/", 1)[0]
        # Hidden (leading dot) and not ending in the final extension, so neither pyarrow's
        # dataset discovery nor a reader's `**/*.parquet` glob picks up a half-written file.
        tmp = f"{parent}/{TMP_PREFIX}{uuid.uuid4().hex}-{path.rsplit('/', 1)[-1]}{TMP_SUFFIX}"
        self.fs.makedirs(parent, exist_ok=True)
        if isinstance(self.fs, LocalFileSystem):
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            return
        try:
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, path)
        finally:
            if self.fs.exists(tmp):
                self.fs.rm_file(tmp)

    def write_table_atomic(self, path: str, table: pa.Table) -> None:
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        self.write_bytes_atomic(path, buffer.getvalue())

    def read_table(self, path: str) -> pa.Table:
        with self.fs.open(path, "rb") as handle:
            return pq.read_table(handle)

    def remove(self, path: str, recursive: bool = False) -> None:
        if self.fs.exists(path):
            self.fs.rm(path, recursive=recursive)

    def check_writable(self) -> None:
        """Raise :class:`StorageUnavailable` unless a file can be created and removed at the root."""
        probe = self.join(f"{TMP_PREFIX}probe-{uuid.uuid4().hex}{TMP_SUFFIX}")
        try:
            self.fs.makedirs(self.path, exist_ok=True)
            self.fs.pipe_file(probe, b"")
            self.fs.rm_file(probe)
        except (OSError, ValueError) as error:
            raise StorageUnavailable(f"storage {self.url(self.path)} is not writable ({error})") from error

    def remove_interrupted_writes(self, older_than_seconds: float) -> list[str]:
        """Delete temporary files of writes that never finished, if older than the given age.

        The age guard keeps a concurrent run's write in flight: no file of this job takes more
        than seconds to write, so a temporary file an hour old belongs to a killed process."""
        if not self.fs.exists(self.path):
            return []
        cutoff = time.time() - older_than_seconds
        removed = []
        for path in self.fs.find(self.path):
            name = path.rsplit("/", 1)[-1]
            if name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX) and _modified(self.fs.info(path)) < cutoff:
                self.fs.rm_file(path)
                removed.append(self.url(path))
        return removed


class UnsafePath(InvalidInput):
    """A path part from a parameter or data would point outside the storage root."""


class StorageUnavailable(Unavailable):
    """The storage root cannot be written."""


def _modified(info: dict) -> float:
    """A file's modification time in seconds since the epoch, from an fsspec ``info`` dict
    (``mtime`` on local disks, ``LastModified`` on object stores)."""
    value = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value) if value is not None else time.time()
