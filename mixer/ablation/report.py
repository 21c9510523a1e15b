"""``report.html``: the summary table and every plot, one self-contained page to open offline
(the images are files beside it, referenced by relative path)."""

from __future__ import annotations

import html
from pathlib import Path


def _table(markdown: str) -> str:
    lines = [x for x in markdown.strip().splitlines() if not x.startswith("|---")]
    rows = [[c.strip() for c in x.strip("|").split("|")] for x in lines]
    out = ["<table>"]
    for i, cells in enumerate(rows):
        tag = "th" if i == 0 else "td"
        parts = []
        for c in cells:
            bold = c.startswith("**") and c.endswith("**")
            text = html.escape(c.strip("*"))
            parts.append(f"<{tag}>{'<b>' + text + '</b>' if bold else text}</{tag}>")
        out.append("<tr>" + "".join(parts) + "</tr>")
    return "\n".join(out + ["</table>"])


def write_report(
    out: Path, title: str, table_md: str, images: list[Path], notes: list[str]
) -> Path:
    figures = "\n".join(
        f'<figure><img src="{html.escape(str(p.relative_to(out)))}" alt="{html.escape(p.stem)}">'
        f"<figcaption>{html.escape(p.stem.replace('_', ' '))}</figcaption></figure>"
        for p in images
    )
    body = "\n".join(f"<p>{html.escape(n)}</p>" for n in notes)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; font-size: 14px; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
figure {{ display: inline-block; margin: 1em; }} img {{ max-width: 520px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{body}
{_table(table_md)}
{figures}
</body></html>
"""
    path = out / "report.html"
    path.write_text(page)
    return path
