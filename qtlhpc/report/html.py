"""The report's index.html: a header, then one section per result with figures, tables and notes.

Every piece of text from the results file is HTML-escaped; figures are linked by relative file name.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import List, Sequence

from qtlhpc.report.collect import FileHeader

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.55em; }
th { background: #f3f3f3; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
p.note { color: #8a4b00; background: #fff6e5; padding: 0.4em 0.7em; border-left: 3px solid #e0a040; }
figure { margin: 0.8em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; }
"""


@dataclass
class Table:
    """A table: ``columns`` headers, ``rows`` of already formatted cells; ``numeric`` marks right-aligned columns."""

    caption: str
    columns: Sequence[str]
    rows: List[Sequence[str]]
    numeric: Sequence[bool] = ()


@dataclass
class FigureLink:
    file_name: str
    caption: str


@dataclass
class Section:
    title: str
    notes: List[str] = field(default_factory=list)
    figures: List[FigureLink] = field(default_factory=list)
    tables: List[Table] = field(default_factory=list)


def render_table(table: Table) -> str:
    numeric = list(table.numeric) or [False] * len(table.columns)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = "".join(
            f'<td class="number">{html.escape(str(v))}</td>' if is_number else f"<td>{html.escape(str(v))}</td>"
            for v, is_number in zip(row, numeric))
        body.append(f"<tr>{cells}</tr>")
    return (f"<table>\n<caption>{html.escape(table.caption)}</caption>\n<thead><tr>{head}</tr></thead>\n"
            f"<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>")


def render_section(section: Section) -> str:
    parts = [f"<h2>{html.escape(section.title)}</h2>"]
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in section.notes]
    parts += [render_table(table) for table in section.tables]
    for figure in section.figures:
        link = html.escape(figure.file_name, quote=True)
        parts.append(f'<figure><a href="{link}"><img src="{link}" alt="{html.escape(figure.caption, quote=True)}">'
                     f"</a><figcaption>{html.escape(figure.caption)}</figcaption></figure>")
    return "\n".join(parts)


def render_header(header: FileHeader) -> str:
    rows = []
    for stage in header.stages:
        progress = "; ".join(f"{key} {done}/{total} blocks" for key, (done, total) in stage.progress.items())
        rows.append([stage.name, stage.status, stage.started, stage.finished,
                     "" if stage.n_ranks is None else str(stage.n_ranks), progress])
    table = Table("Stages in the file (times in UTC)", ["stage", "status", "started", "finished", "MPI ranks",
                                                       "checkpoints"], rows,
                  [False, False, False, False, True, False])
    facts = (f"<p><b>Results file:</b> {html.escape(header.file_name)} &nbsp; <b>qtlhpc version:</b> "
             f"{html.escape(header.qtlhpc_version)} &nbsp; <b>created:</b> {html.escape(header.created)}</p>")
    return facts + "\n" + render_table(table)


def render_page(header: FileHeader, sections: Sequence[Section]) -> str:
    """The whole index.html."""
    title = f"qtlhpc report: {header.file_name}"
    body = "\n".join([f"<h1>{html.escape(title)}</h1>", render_header(header)]
                     + [render_section(s) for s in sections])
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
