"""Reports: ``reports/<run date>/report.md``, ``report.html`` and the PNGs they reference."""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from storage.fs import Root

REPORTS = "reports"


class ReportStore:
    def __init__(self, root: Root) -> None:
        self.root = root

    def folder(self, run_date) -> str:
        return self.root.join(REPORTS, pd.Timestamp(run_date).strftime("%Y-%m-%d"))

    def write(self, run_date, markdown: str, html: str, images: Mapping[str, bytes]) -> str:
        """Write one run's report; files of an earlier render of the same run date that the new
        one no longer has are removed, so the folder always matches ``report.md``."""
        folder = self.folder(run_date)
        for name, data in images.items():
            self.root.write_bytes_atomic(f"{folder}/{name}", data)
        self.root.write_bytes_atomic(f"{folder}/report.html", html.encode())
        # The Markdown goes last: its presence means the whole report is there.
        self.root.write_bytes_atomic(f"{folder}/report.md", markdown.encode())
        keep = {"report.md", "report.html", *images}
        for stale in set(self.root.listdir(folder)) - keep:
            self.root.remove(f"{folder}/{stale}")
        return self.root.url(folder)

    def files(self, run_date) -> list[str]:
        return self.root.listdir(self.folder(run_date))

    def read_text(self, run_date, name: str) -> str:
        return self.root.read_bytes(f"{self.folder(run_date)}/{name}").decode()
