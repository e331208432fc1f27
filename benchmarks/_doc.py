"""Report plumbing: number and table formatting (Markdown, HTML, LaTeX) and a document of blocks
written as self-contained HTML (figures inline as SVG, with hover values and clickable legends, no
external file or network needed) and Markdown (figures linked).

Text in paragraphs and table cells may hold two kinds of inline markup, rendered in each format:
code in backticks (```x``` or ````x````, as the definitions in :mod:`benchmarks.metrics` write it)
and links ``[text](href)``.
"""

from __future__ import annotations

import html
import math
import os
import re
from pathlib import Path

import pandas as pd

from benchmarks import _style
from benchmarks.figures import Figure

_CODE = re.compile(r"``(.+?)``|`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def inline_html(text) -> str:
    """``text`` escaped for HTML, its backticked code as <code> and its links as <a>."""
    out, pos = [], 0
    text = str(text)
    for m in re.finditer(f"{_CODE.pattern}|{_LINK.pattern}", text):
        out.append(html.escape(text[pos:m.start()]))
        code, code1, label, href = m.groups()
        if label is not None:
            out.append(f'<a href="{html.escape(href)}">{html.escape(label)}</a>')
        else:
            out.append(f"<code>{html.escape(code if code is not None else code1)}</code>")
        pos = m.end()
    return "".join(out) + html.escape(text[pos:])


def inline_md(text) -> str:
    """``text`` for Markdown: double backticks become single ones (links are Markdown already)."""
    return _CODE.sub(lambda m: f"`{m.group(1) or m.group(2)}`", str(text))


def plain(text) -> str:
    """``text`` without inline markup: code as its text, links as their label."""
    text = _LINK.sub(lambda m: m.group(1), str(text))
    return _CODE.sub(lambda m: m.group(1) or m.group(2), text)


# -- formatting ---------------------------------------------------------------------------------
def fmt_ci(mean: float, half: float, digits: int = 3, scale: float = 1.0) -> str:
    if mean != mean:
        return "—"
    mean, half = mean * scale, half * scale
    if half != half:
        return f"{mean:.{digits}f}" if abs(mean) < 1e4 else f"{mean:.3g}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}" if abs(mean) < 1e4 else f"{mean:.3g} ± {half:.2g}"


def fmt_num(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}" if abs(v) < 1e5 else f"{v:.3g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def md_table(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    esc = lambda s: inline_md(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(esc(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{inline_html(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{inline_html(v)}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def tex_escape(s: str) -> str:
    s = plain(s)
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("ε", r"$\varepsilon$"), ("∞", r"$\infty$"), ("±", r"$\pm$"), ("—", "--"),
                 ("Δ", r"$\Delta$"), ("×", r"$\times$"), ("†", r"\textdagger{}")):
        s = s.replace(a, b)
    return s


# -- LaTeX tables: siunitx columns, best value in bold, split to fit a column ----------------------
#: a column of a two-column paper (3.5 in) in TeX points, and the estimated width of a character
#: and of the space around a cell in \small (9 pt) type
COLUMN_PT, CHAR_PT, CELL_PAD_PT = 3.5 * 72.27, 4.6, 12.0
#: the share of a column a table may fill by the estimate (the estimate is rough; TeX's own column
#: widths vary by class: 252 pt in IEEEtran, 241 pt in acmart)
FILL = 0.95
TEX_NOTE = ("% needs \\usepackage{booktabs} and \\usepackage{siunitx} (v3) in the preamble; each table\n"
            "% sets its own \\sisetup. Best value per column in bold.\n")


class Num:
    """A numeric column of a LaTeX table: ``key`` in the stats rows, its header, decimals, which way is
    better (``"max"``, ``"min"`` or None: no bold) and a scale applied to mean and half-width."""

    def __init__(self, key: str, header: str, digits: int = 3, better: str | None = "max",
                 scale: float = 1.0):
        self.key, self.header, self.digits, self.better, self.scale = key, header, digits, better, scale

    def values(self, rows: list[dict]) -> list[tuple[float, float]]:
        out = []
        for r in rows:
            mean, half = r.get(self.key, (math.nan, math.nan))
            out.append((mean * self.scale, half * self.scale))
        return out

    def cells(self, rows: list[dict]) -> list[str]:
        vals = self.values(rows)
        # reference rows (another paper's figures) are shown, never ranked
        finite = [m for (m, _), r in zip(vals, rows, strict=True)
                  if m == m and abs(m) != math.inf and not r.get("_reference")]
        best = (max(finite) if self.better == "max" else min(finite)) if finite and self.better else None
        d = self.digits
        out = []
        for mean, half in vals:
            if mean != mean:
                out.append("{--}")
                continue
            cell = f"{mean:.{d}f}" + (f" \\pm {half:.{d}f}" if half == half else "")
            # compare as printed: equal when they print alike
            out.append(("\\bfseries " if best is not None and f"{mean:.{d}f}" == f"{best:.{d}f}" else "")
                       + cell)
        return out

    def table_format(self, rows: list[dict]) -> str:
        vals = [(m, h) for m, h in self.values(rows) if m == m]
        if not vals:
            return "1.0"
        whole = max(len(str(int(abs(m)))) for m, _ in vals)
        sign = "-" if any(m < 0 for m, _ in vals) else ""
        unc = max((len(str(round(h * 10 ** self.digits))) for _, h in vals if h == h), default=0)
        return f"{sign}{whole}.{self.digits}" + (f"({unc})" if unc else "")

    def width_pt(self, rows: list[dict]) -> float:
        vals = [(m, h) for m, h in self.values(rows) if m == m]
        text = max((len(f"{m:.{self.digits}f}" + (f" ± {h:.{self.digits}f}" if h == h else ""))
                    for m, h in vals), default=2)
        return max(text, len(self.header)) * CHAR_PT + CELL_PAD_PT


def split_columns(rows: list[dict], label_col: str, cols: list[Num], width_pt: float = COLUMN_PT
                  ) -> list[list[Num]]:
    """``cols`` in consecutive groups, each of which fits ``FILL * width_pt`` beside the label column."""
    label_w = table_width_pt(rows, label_col, [])
    groups: list[list[Num]] = [[]]
    used = label_w
    for c in cols:
        w = c.width_pt(rows)
        if groups[-1] and used + w > FILL * width_pt:
            groups.append([])
            used = label_w
        groups[-1].append(c)
        used += w
    return [g for g in groups if g]


def table_width_pt(rows: list[dict], label_col: str, cols: list[Num]) -> float:
    """The estimated width of a table of ``cols`` beside the label column (for the split)."""
    label_w = max([len(label_col)] + [len(plain(r[label_col])) for r in rows]) * CHAR_PT + CELL_PAD_PT
    return label_w + sum(c.width_pt(rows) for c in cols)


def tex_si_tables(rows: list[dict], label_col: str, cols: list[Num], caption: str, label: str,
                  width_pt: float = COLUMN_PT) -> str:
    """LaTeX tables of ``rows`` (dicts: ``label_col`` -> text, each column's key -> (mean, 95% CI
    half-width)): siunitx ``S`` columns with mean ± CI, the best value of each column in bold, split
    into as many tables as it takes for each to fit ``width_pt`` (labels ``label``, ``label-b``..).
    Rows with a true ``_reference`` (another paper's figures) are never bold."""
    groups = split_columns(rows, label_col, cols, width_pt)
    out = []
    for i, group in enumerate(groups):
        part = "" if len(groups) == 1 else f" ({i + 1}/{len(groups)})"
        spec = "".join(f"S[table-format={c.table_format(rows)}]" for c in group)
        lines = [r"\begin{table}[t]", r"\centering", r"\small",
                 r"\sisetup{uncertainty-mode=separate, reset-text-series=false, text-series-to-math=true,"
                 r" table-align-uncertainty=true}",
                 rf"\caption{{{tex_escape(caption)}{part}}}",
                 rf"\label{{{label}{'' if i == 0 else '-' + chr(ord('a') + i)}}}",
                 rf"\begin{{tabular}}{{l{spec}}}", r"\toprule",
                 " & ".join([tex_escape(label_col)] + [f"{{{tex_escape(c.header)}}}" for c in group])
                 + r" \\", r"\midrule"]
        cells = [c.cells(rows) for c in group]
        for j, r in enumerate(rows):
            lines.append(" & ".join([tex_escape(r[label_col])] + [col[j] for col in cells]) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
        out.append("\n".join(lines))
    return "\n".join(out)


def tex_table(frame: pd.DataFrame, caption: str, label: str) -> str:
    """A plain booktabs table of text cells (for tables that are not numbers with intervals)."""
    cols = list(frame.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{tex_escape(caption)}}}",
             rf"\label{{{label}}}", r"\begin{tabular}{l" + "c" * (len(cols) - 1) + "}", r"\toprule",
             " & ".join(tex_escape(c) for c in cols) + r" \\", r"\midrule"]
    for row in frame.itertuples(index=False):
        lines.append(" & ".join(tex_escape(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


# -- the document --------------------------------------------------------------------------------
CSS = ("body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
       "color:#222}table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:13px}"
       "th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}"
       "th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}"
       "figure{margin:1.2em 0}figcaption{font-size:13px;color:#444;max-width:7.1in}"
       "svg.pm-figure{display:block;overflow:visible}svg.pm-figure text{font-family:'DejaVu Sans',"
       "Verdana,sans-serif}svg.pm-figure [data-series]:not([data-legend]):hover{opacity:.75}"
       "code{font-size:90%;background:#f4f4f4;padding:0 .2em}"
       "h2{border-bottom:2px solid #eee;margin-top:1.6em}.files{font-size:12px}")


def html_blocks(base: Path) -> dict:
    """HTML writers; figures are inlined (SVG), their PDF and PNG linked relative to ``base``."""
    def figure(fig: Figure) -> str:
        name = html.escape(fig.name)
        if fig.svg and Path(fig.svg).is_file():
            body = Path(fig.svg).read_text(encoding="utf-8")
        else:  # an index written before figures had an SVG twin
            import base64

            data = base64.b64encode(Path(fig.png).read_bytes()).decode()
            body = (f'<img alt="{name}" style="width:{fig.width_in or 7.1}in" '
                    f'src="data:image/png;base64,{data}">')
        links = " · ".join(f'<a href="{html.escape(os.path.relpath(p, base))}">{ext}</a>'
                           for ext, p in (("PDF", fig.pdf), ("PNG", fig.png)))
        width = f"{fig.width_in:g} in" if fig.width_in else ""
        return (f'<figure id="{name}" data-width-in="{fig.width_in:g}">{body}'
                f"<figcaption><b>{name}</b>. {inline_html(fig.caption)} "
                f'<span class="files">({width}: {links})</span></figcaption></figure>')

    return {"h": lambda b: f'<h{b[0]} id="{_anchor(b[1])}">{html.escape(b[1])}</h{b[0]}>',
            "p": lambda t: f"<p>{inline_html(t)}</p>", "table": html_table, "figure": figure}


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def markdown_blocks(base: Path) -> dict:
    """Markdown writers; figures are linked relative to ``base`` (the report's directory)."""
    def figure(fig: Figure) -> str:
        return (f"![{fig.name}]({os.path.relpath(fig.png, base)})\n\n*{fig.name}.* {inline_md(fig.caption)} "
                f"([PDF]({os.path.relpath(fig.pdf, base)}))")

    return {"h": lambda b: "#" * b[0] + " " + b[1], "p": inline_md, "table": md_table, "figure": figure}


class Doc:
    """Blocks rendered twice: HTML (figures inline) and Markdown (figures linked)."""

    def __init__(self):
        self.blocks: list[tuple[str, object]] = []

    def h(self, level: int, text: str):
        self.blocks.append(("h", (level, text)))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def table(self, frame: pd.DataFrame):
        self.blocks.append(("table", frame))

    def figure(self, fig: Figure):
        self.blocks.append(("figure", fig))

    def render(self, writers: dict) -> list[str]:
        return [writers[kind](obj) for kind, obj in self.blocks]

    def html(self, title: str, base: Path | None = None) -> str:
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>\n"
                + "\n".join(self.render(html_blocks(Path(base or ".")))) + "\n"
                f"<script>{_style.SCRIPT}</script>\n</body></html>\n")

    def markdown(self, base: Path) -> str:
        return "\n\n".join(self.render(markdown_blocks(base))) + "\n"
