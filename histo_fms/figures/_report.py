"""A self-contained HTML report page: figures (embedded), statistics, provenance."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

_CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3}figure{display:inline-block;margin:0.5em}
img{max-width:100%}pre{background:#f7f7f7;padding:0.6em;font-size:11px;overflow:auto}
.fail{color:#D55E00;font-weight:bold}"""


def _embed(path: Path) -> str:
    mime = {".svg": "image/svg+xml", ".png": "image/png"}[path.suffix.lower()]
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:{mime};base64,{data}">'


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0)


def render_report(
    figures: Sequence[tuple[str, Sequence[Path]]],
    stats: pd.DataFrame,
    provenance: Mapping | None,
    *,
    tables: Mapping[str, pd.DataFrame] | None = None,
    title: str = "histo-fms results",
    notes: Sequence[str] = (),
) -> str:
    """Build the HTML of a report page with everything embedded (no external files).

    Parameters
    ----------
    figures : sequence of (str, sequence of Path)
        Caption and the files of one figure; the SVG is embedded, else the PNG.
    stats : pandas.DataFrame
        The tidy statistics table.
    provenance : mapping or None
        The run's ``run.json`` content.
    tables : mapping of str to pandas.DataFrame, optional
        Further tables (per-unit summaries), by caption.
    title : str
        Page title.
    notes : sequence of str
        Warnings or remarks listed at the top.

    Returns
    -------
    str
        The HTML document.
    """
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    if notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>Figures</h2>")
    for caption, files in figures:
        by_ext = {Path(f).suffix.lower(): Path(f) for f in files}
        src = by_ext.get(".svg") or by_ext.get(".png")
        links = " ".join(html.escape(Path(f).name) for f in files)
        body = _embed(src) if src is not None and src.exists() else "<p>(no SVG/PNG written)</p>"
        parts.append(f"<figure>{body}<figcaption>{html.escape(caption)} "
                     f"<small>[{links}]</small></figcaption></figure>")
    parts.append("<h2>Statistics</h2><p>One value per unit (animal or subject) enters each "
                 "test; n are units.</p>" + _table(stats))
    for caption, df in (tables or {}).items():
        parts.append(f"<h3>{html.escape(caption)}</h3>" + _table(df))
    parts.append("<h2>Provenance</h2>")
    if provenance:
        prov = dict(provenance)
        thr = prov.get("threshold")
        parts.append(f"<p><b>Threshold</b>: {html.escape(json.dumps(thr))}</p>")
        files = prov.get("files") or []
        if files:
            ft = pd.DataFrame(files)
            keep = [c for c in ("image", "status", "error", "sha256", "path") if c in ft]
            parts.append("<h3>Files</h3>" + _table(ft[keep]))
        for key in ("versions", "config"):
            if key in prov:
                parts.append(f"<h3>{key}</h3><pre>"
                             f"{html.escape(json.dumps(prov[key], indent=1, default=str))}</pre>")
        rest = {k: v for k, v in prov.items() if k not in ("files", "versions", "config")}
        parts.append("<h3>Run</h3><pre>"
                     f"{html.escape(json.dumps(rest, indent=1, default=str))}</pre>")
    else:
        parts.append("<p class='fail'>no run.json found</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | Path, *args: object, **kwargs: object) -> Path:
    """Write :func:`render_report` output atomically.

    Parameters
    ----------
    path : str or Path
        Destination ``.html``.
    *args, **kwargs
        Passed to :func:`render_report`.

    Returns
    -------
    Path
        The file written.
    """
    from histo_fms.io import atomic_path

    text = render_report(*args, **kwargs)  # type: ignore[arg-type]
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)
