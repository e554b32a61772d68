"""A page described once as a list of blocks (headings, paragraphs, bullet lists, tables,
images) and rendered to Markdown and to self-contained HTML, so the two cannot drift apart.
Pure: strings and bytes out."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

NOTHING = "\u2013"  # –, shown for a missing value


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str
    css_class: str | None = None


@dataclass(frozen=True)
class Bullets:
    items: list[str]
    css_class: str | None = None


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    row_classes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Image:
    filename: str
    alt: str


Block = Heading | Paragraph | Bullets | Table | Image


Column = tuple[str, str, Callable[[Any], str]]


def row_cells(row: Any, columns: Sequence[Column]) -> list[str]:
    """The formatted cells of one itertuples row, in the order of ``columns``."""
    return [fmt(getattr(row, column)) for _, column, fmt in columns]


def to_markdown(blocks: Sequence[Block], with_images: bool) -> str:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            prefix = "> " if block.css_class == "note" else ""
            lines += [prefix + block.text, ""]
        elif isinstance(block, Bullets):
            strong = block.css_class == "alert"
            lines += [f"- **{item}**" if strong else f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            lines.append("|" + "|".join("---:" if n else "---" for n in block.numeric) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            lines.append("")
        elif isinstance(block, Image) and with_images:
            lines += [f"![{_md_cell(block.alt)}]({block.filename})", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 75rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.reference td { background: #f0f4fa; font-style: italic; }
tr.alert td, ul.alert { background: #fde8e8; color: #8a1111; font-weight: bold; }
ul.alert { border: 2px solid #c62828; padding: 0.5rem 2rem; }
p.note { border-left: 4px solid #e0a800; padding-left: 0.75rem; background: #fff8e1; }
img { max-width: 100%; }
""".strip()


def to_html(blocks: Sequence[Block], images: dict[str, bytes], title: str) -> str:
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p{_class_attr(block.css_class)}>{html.escape(block.text)}</p>")
        elif isinstance(block, Bullets):
            items = "".join(f"<li>{html.escape(item)}</li>" for item in block.items)
            body.append(f"<ul{_class_attr(block.css_class)}>{items}</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
            rows = []
            for index, row in enumerate(block.rows):
                css = block.row_classes[index] if index < len(block.row_classes) else ""
                cells = "".join(
                    f"<td{_class_attr('num' if numeric else None)}>{html.escape(cell)}</td>"
                    for cell, numeric in zip(row, block.numeric)
                )
                rows.append(f"<tr{_class_attr(css)}>{cells}</tr>")
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
        elif isinstance(block, Image):
            # Embedded as a data URI so the single HTML file can be mailed or opened anywhere.
            data = base64.b64encode(images[block.filename]).decode("ascii")
            alt = html.escape(block.alt)
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{alt}"><figcaption>{alt}</figcaption></figure>')
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _class_attr(css_class: str | None) -> str:
    return f' class="{css_class}"' if css_class else ""


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and math.isnan(value))


def formatter(spec: str) -> Callable[[Any], str]:
    """A cell formatter that shows a dash for a missing value (nothing scored, no interval)."""
    return lambda value: NOTHING if missing(value) else spec.format(value)
