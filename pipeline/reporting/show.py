"""``zoo show``: the leaderboard and the claims in the terminal, read from ``reports/``.

It renders what ``zoo compare`` wrote (``reports/leaderboard.md`` and ``reports/claims.md``),
so it prints the same ranking as the files, and imports nothing heavier than the standard
library: it answers in a fraction of a second.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def _plain(cell: str) -> str:
    """A markdown cell as terminal text: links keep their text, code and bold lose their marks."""
    cell = _LINK.sub(r"\1", cell.strip()).replace("\\|", "|")
    return cell.replace("**", "").replace("`", "")


def _split_row(line: str) -> list[str]:
    return [_plain(c) for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def sections(markdown: str) -> list[tuple[str, list[str]]]:
    """(heading, lines) for each ``## `` section; the text before the first is dropped."""
    out: list[tuple[str, list[str]]] = []
    for line in markdown.splitlines():
        if line.startswith("## "):
            out.append((_plain(line[3:]), []))
        elif out:
            out[-1][1].append(line)
    return out


def render_table(rows: list[list[str]], numeric: list[bool], width: int) -> list[str]:
    """Aligned columns; the widest column is wrapped so the table fits ``width``."""
    n = max(len(r) for r in rows)
    rows = [r + [""] * (n - len(r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(n)]
    excess = sum(widths) + 2 * (n - 1) - width
    if excess > 0:
        widest = max(range(n), key=lambda i: widths[i])
        widths[widest] = max(12, widths[widest] - excess)
    lines = []
    for k, row in enumerate(rows):
        wrapped = [textwrap.wrap(c, widths[i]) or [""] for i, c in enumerate(row)]
        for j in range(max(len(w) for w in wrapped)):
            parts = []
            for i, w in enumerate(wrapped):
                text = w[j] if j < len(w) else ""
                parts.append(text.rjust(widths[i]) if numeric[i] and k > 0 else text.ljust(widths[i]))
            lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def render(lines: list[str], width: int) -> list[str]:
    """A section's markdown lines as terminal text: tables aligned, prose wrapped."""
    out: list[str] = []
    table: list[list[str]] = []
    numeric: list[bool] = []

    def flush():
        if table:
            out.extend(render_table(table, numeric, width))
            table.clear()

    for line in lines:
        if line.startswith("|"):
            cells = _split_row(line)
            if all(re.fullmatch(r":?-+:?", c.replace(" ", "")) for c in cells):
                numeric = [c.endswith(":") for c in cells]
                continue
            if not table:
                numeric = [False] * len(cells)
            table.append(cells)
        else:
            flush()
            if line.startswith("!["):
                continue  # pictures: see reports/index.html
            text = _plain(line)
            out.extend(textwrap.wrap(text, width, subsequent_indent="  " if text.startswith("- ") else "") or [""])
    flush()
    while out and not out[-1]:
        out.pop()
    return out


def show(reports: Path, task: str | None = None, claims: bool = True, width: int | None = None) -> str:
    width = width or max(60, shutil.get_terminal_size((120, 40)).columns)
    board = reports / "leaderboard.md"
    if not board.is_file():
        raise FileNotFoundError(f"{board} does not exist: run `dvc repro` (or `zoo compare`) first")
    chosen = [(h, body) for h, body in sections(board.read_text(encoding="utf-8")) if h != "Plots"]
    if task is not None:
        names = [h.split(" on ")[0] for h, _ in chosen]
        chosen = [(h, body) for h, body in chosen if h.split(" on ")[0] == task]
        if not chosen:
            raise ValueError(f"no leaderboard for task '{task}'; choose from: {', '.join(sorted(set(names)))}")
    out = []
    for heading, body in chosen:
        out += [heading, "=" * len(heading), *render(body, width), ""]
    claims_file = reports / "claims.md"
    if claims and task is None and claims_file.is_file():
        text = claims_file.read_text(encoding="utf-8")
        summary = text.split("\n## ", 1)[0].splitlines()
        table = [line for line in summary if line.startswith("|")]
        out += ["The tutorial's claims (details: reports/claims.md)", "=" * 50, *render(table, width), ""]
    return "\n".join(out).rstrip() + "\n"
