"""``reports/index.html``: the leaderboard, the claims and the key pictures on one page.

Self-contained: every picture is embedded as a base64 data URI and the style sheet is inline,
so the file works offline and anywhere it is copied (an MLflow artifact, an e-mail). No
scripts. Built from the same tables and claim results as the Markdown reports.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from pipeline.reporting.claims import CEILING, ELSEWHERE, NOT_ENOUGH, STATISTICS, SUPPORTED, ClaimResult, verdict_label

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1, h2, h3 { line-height: 1.2; }
table { border-collapse: collapse; margin: .5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.sanity td { background: #f8f8f0; font-style: italic; }
code { font-size: 12px; }
.supported { background: #dff3df; }
.not-supported { background: #f8dede; }
.not-enough-data { background: #eee; }
.inconclusive { background: #f6efd6; }
.noise { font-size: 12px; color: #555; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; max-width: 360px; }
figure.wide { max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 12px; text-align: center; }
nav a { margin-right: 1em; }
"""


def data_uri(path: Path) -> str:
    kind = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _inline(text: str) -> str:
    """Escape, then render the Markdown backticks the shared texts use as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _emphasis(text: str) -> str:
    """``_inline`` plus the Markdown **bold** and *italics* of the shared explanations."""
    return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", _inline(text)))


def _cell(cell, numeric: bool) -> str:
    text = f"<code>{html.escape(cell.text)}</code>" if cell.code else html.escape(cell.text)
    if cell.href:
        text = f'<a href="{html.escape(cell.href)}">{text}</a>'
    return f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>"


def _css_class(verdict: str) -> str:
    return "inconclusive" if verdict.startswith("inconclusive") else verdict.replace(" ", "-")


def _table(table) -> str:
    out = [f"<h3 id=\"{html.escape(table.task)}-{html.escape(table.dataset)}\">{_inline(table.title)}</h3>", f"<p>{_inline(table.intro)}</p>", "<table>"]
    out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.header) + "</tr>")
    for i, row in enumerate(table.rows):
        sanity = i < table.sanity_rows
        cells = "".join(_cell(c, table.numeric(j)) for j, c in enumerate(row))
        out.append(f'<tr class="sanity">{cells}</tr>' if sanity else f"<tr>{cells}</tr>")
    out.append("</table>")
    if table.footnotes:
        out.append('<p class="noise">Published figures (<b>paper</b>; compare like with like: the settings differ as stated):</p><ul class="noise">')
        out += [f"<li>{html.escape(note)}</li>" for note in table.footnotes]
        out.append("</ul>")
    return "\n".join(out)


def _claims(results: list[ClaimResult]) -> str:
    out = ["<table>", "<tr><th>#</th><th>claim</th><th>verdict</th><th>why</th><th>numbers</th></tr>"]
    for r in results:
        numbers = "<br>".join(f"<code>{html.escape(name)}</code> <code>{html.escape(key)}</code>: {html.escape(str(stat))}" for name, key, stat in r.numbers)
        out.append(
            f'<tr id="claim-{r.claim.number}"><td class="num">{r.claim.number}</td><td>{_inline(r.claim.text)}'
            f'<br><span class="noise">rule: {_inline(r.claim.criterion)}</span></td>'
            f'<td class="{_css_class(r.verdict)}"><b>{html.escape(verdict_label(r))}</b></td>'
            f"<td>{_inline(r.explanation)}</td><td>{numbers or '—'}</td></tr>"
        )
    out.append("</table>")
    return "\n".join(out)


def _figure(path: Path, caption: str, wide: bool = False) -> str:
    klass = ' class="wide"' if wide else ""
    return f'<figure{klass}><img src="{data_uri(path)}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'


def page(tables, results: list[ClaimResult], plots: list[Path], gallery: list[tuple[str, list[tuple[str, Path]]]]) -> str:
    """The whole page; ``plots`` are the comparison plots, ``gallery`` (section, [(experiment, picture)])."""
    from pipeline.stages.compare import LEGEND

    supported = sum(r.verdict == SUPPORTED for r in results)
    unjudged = sum(r.verdict == NOT_ENOUGH for r in results)
    ceiling = sum(r.verdict == CEILING for r in results)
    elsewhere = sum(r.verdict == ELSEWHERE for r in results)
    body = [
        "<h1>rnngan-zoo: leaderboard and claims</h1>",
        "<p>Generated by <code>zoo compare</code> from <code>metrics/</code> and the MLflow runs; do not edit by hand. "
        "The same tables as <code>reports/leaderboard.md</code> and <code>reports/claims.md</code>.</p>",
        '<nav><a href="#claims">claims</a><a href="#leaderboard">leaderboard</a><a href="#plots">plots</a><a href="#samples">samples</a></nav>',
        f'<h2 id="claims">The tutorial\'s claims</h2><p>{supported} of {len(results) - elsewhere} supported, {unjudged} without enough data, '
        f"{ceiling} inconclusive at the ceiling{f', {elsewhere} judged in another profile' if elsewhere else ''}.</p><p>{_emphasis(STATISTICS)}</p>",
        _claims(results),
        '<h2 id="leaderboard">Leaderboard</h2>',
        f"<p>{_emphasis(LEGEND)}</p>",
        *(_table(t) for t in tables),
        '<h2 id="plots">Plots</h2>',
        '<div class="figures">' + "".join(_figure(p, p.stem.replace("_", " "), wide=False) for p in plots) + "</div>" if plots else "<p>No comparison plots yet.</p>",
        '<h2 id="samples">Samples and diagnostics per experiment</h2>',
    ]
    for section, pictures in gallery:
        body.append(f"<h3>{html.escape(section)}</h3>")
        body.append('<div class="figures">' + "".join(_figure(path, f"{name}: {path.stem.replace('_', ' ')}") for name, path in pictures) + "</div>")
    if not gallery:
        body.append("<p>No pictures yet: evaluate an experiment first.</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>rnngan-zoo report</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
