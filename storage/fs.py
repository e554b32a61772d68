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
import uuid
from dataclasses import dataclass

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

TMP_PREFIX = ".tmp-"


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

    def write_bytes_atomic(self, path: str, data: bytes) -> None:
        parent = path.rsplit("/", 1)[0]
        # Hidden (leading dot) and not ending in the final extension, so neither pyarrow's
        # dataset discovery nor a reader's `**/*.parquet` glob picks up a half-written file.
        tmp = f"{parent}/{TMP_PREFIX}{uuid.uuid4().hex}-{path.rsplit('/', 1)[-1]}.partial"
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
