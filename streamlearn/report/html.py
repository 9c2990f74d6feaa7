"""One self-contained HTML page from the charts (PNGs inlined as data URIs, inline CSS, no JS),
and each chart's PNG beside it as `<slug>.png`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape
from pathlib import Path

from .plotting import Chart

HTML_NAME = "report.html"
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1150px;
       padding: 0 1rem; color: #222; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
header dt { font-weight: 600; }
section { border-top: 1px solid #ddd; padding-top: 1rem; margin-top: 1.5rem; }
img { max-width: 100%; height: auto; display: block; }
.caption { color: #444; }
.missing { background: #fff6e0; border-left: 4px solid #e69f00; padding: .5rem .8rem; }
nav ol { columns: 2; }
"""


def render_html(
    charts: Sequence[Chart], *, source_label: str, time_range: str, data_summary: str
) -> str:
    """The page: a header (store, time range, what data there is), a contents list, and each
    chart with its title and caption, or its missing note."""
    items = "\n".join(
        f'<li><a href="#{escape(c.slug)}">{escape(c.title)}</a>{"" if c.png else " (missing)"}</li>'
        for c in charts
    )
    sections = "\n".join(_section(c) for c in charts)
    # An empty data-URI icon: without it the browser asks for /favicon.ico.
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>streamlearn report</title>
<link rel="icon" href="data:,">
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>streamlearn report</h1>
<dl>
<dt>store</dt><dd>{escape(source_label)}</dd>
<dt>time range</dt><dd>{escape(time_range)}</dd>
<dt>data</dt><dd>{escape(data_summary)}</dd>
</dl>
</header>
<nav><ol>
{items}
</ol></nav>
{sections}
</body>
</html>
"""


def _section(chart: Chart) -> str:
    parts = [f'<section id="{escape(chart.slug)}">', f"<h2>{escape(chart.title)}</h2>"]
    if chart.png:
        data = base64.b64encode(chart.png).decode("ascii")
        parts.append(
            f'<img src="data:image/png;base64,{data}" alt="{escape(chart.title)}" '
            f'data-slug="{escape(chart.slug)}">'
        )
    parts.append(f'<p class="caption">{escape(chart.caption)}</p>')
    if chart.missing:
        label = "Not recorded" if chart.png else "Missing"
        parts.append(f'<p class="missing"><strong>{label}:</strong> {escape(chart.missing)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def write_report(
    charts: Sequence[Chart],
    out_dir: Path,
    *,
    source_label: str,
    time_range: str,
    data_summary: str,
) -> Path:
    """Write `<slug>.png` per drawn chart and report.html into out_dir; returns the HTML path.

    A chart without a PNG this time has its old PNG removed, so the directory matches the page.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for chart in charts:
        png = out_dir / f"{chart.slug}.png"
        if chart.png:
            png.write_bytes(chart.png)
        else:
            png.unlink(missing_ok=True)
    path = out_dir / HTML_NAME
    page = render_html(
        charts, source_label=source_label, time_range=time_range, data_summary=data_summary
    )
    path.write_text(page, encoding="utf-8")
    return path
