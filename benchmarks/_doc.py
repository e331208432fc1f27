"""Report plumbing: number and table formatting (Markdown, HTML, LaTeX) and a document of blocks
written as self-contained HTML (figures inline) and Markdown (figures linked)."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

import pandas as pd

from benchmarks.figures import Figure


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
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(esc(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def tex_escape(s: str) -> str:
    s = str(s)
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("ε", r"$\varepsilon$"), ("∞", r"$\infty$"), ("±", r"$\pm$"), ("—", "--"),
                 ("Δ", r"$\Delta$")):
        s = s.replace(a, b)
    return s


def tex_table(frame: pd.DataFrame, caption: str, label: str) -> str:
    cols = list(frame.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{tex_escape(caption)}}}",
             rf"\label{{{label}}}", r"\begin{tabular}{l" + "c" * (len(cols) - 1) + "}", r"\toprule",
             " & ".join(tex_escape(c) for c in cols) + r" \\", r"\midrule"]
    for row in frame.itertuples(index=False):
        lines.append(" & ".join(tex_escape(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


CSS = ("body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
       "color:#222}table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:13px}"
       "th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}"
       "th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}"
       "figure{margin:1.2em 0}img{max-width:100%}figcaption{font-size:13px;color:#444}"
       "h2{border-bottom:2px solid #eee;margin-top:1.6em}")


def _html_figure(fig: Figure) -> str:
    data = base64.b64encode(Path(fig.png).read_bytes()).decode()
    name = html.escape(fig.name)
    return (f'<figure id="{fig.name}"><img alt="{name}" src="data:image/png;base64,{data}">'
            f"<figcaption><b>{name}</b>. {html.escape(fig.caption)}</figcaption></figure>")


#: how each kind of block is written, per format
HTML = {"h": lambda b: f"<h{b[0]}>{html.escape(b[1])}</h{b[0]}>", "p": lambda t: f"<p>{html.escape(t)}</p>",
        "table": html_table, "figure": _html_figure}


def markdown_blocks(base: Path) -> dict:
    """Markdown writers; figures are linked relative to ``base`` (the report's directory)."""
    def figure(fig: Figure) -> str:
        return f"![{fig.name}]({os.path.relpath(fig.png, base)})\n\n*{fig.name}.* {fig.caption}"

    return {"h": lambda b: "#" * b[0] + " " + b[1], "p": lambda t: t, "table": md_table, "figure": figure}


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

    def html(self, title: str) -> str:
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>\n"
                + "\n".join(self.render(HTML)) + "\n</body></html>\n")

    def markdown(self, base: Path) -> str:
        return "\n\n".join(self.render(markdown_blocks(base))) + "\n"
