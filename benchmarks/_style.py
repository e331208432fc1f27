"""The figure style every figure module shares: sizes, fonts, palettes, legends, and the saved files.

Sizes. A figure is exactly one of two widths, those of a two-column paper: :data:`COLUMN_W` (3.5 in,
one column) or :data:`TEXT_W` (7.1 in, the full text width). Make it with :func:`new_figure`
(``width`` is ``"column"`` or ``"text"``); :func:`save` writes it without cropping, so its files keep
the declared size (PNG at :data:`DPI`: 1050 or 2130 pixels wide; SVG and PDF in points).

Fonts. :data:`RC` (one font, 8 pt text, 7 pt ticks and legends), applied by ``with style():``; a
figure drawn inside it looks the same as every other one once placed at its width.

Palettes, one per meaning, and no colour in two of them (so no colour means two things in one figure):

- methods: :func:`method_color` (Okabe-Ito: plaintext black, HE blue, federated green, DP vermilion;
  other methods the remaining Okabe-Ito colours); variants of one method are shades of its colour
  (``benchmarks._analysis.styles``);
- phases of fit(): :func:`phase_colors` (Paul Tol's muted scheme); start-up (Ray, services) has its
  own colour and hatch, :data:`STARTUP_COLOR`, and is never folded into "other";
- parties: :func:`party_colors` (Paul Tol's vibrant scheme; ``client-3`` and the like are one party,
  "clients", see :func:`party_group`).

Legends. At most :data:`MAX_LEGEND` entries in one figure: :func:`group_minor` keeps the largest
parts of a breakdown and folds the rest into "other".

Interactivity (the HTML report). :func:`series` marks the artists of one legend entry (a method, a
phase): clicking the entry in the report hides or shows them. :func:`tip` gives an artist a hover
text (the values behind a point or bar). :func:`hit_points` adds invisible markers that carry tips
for the points of a line. None of this changes the PDF or PNG. :func:`save` writes ``name.pdf``,
``name.png`` and ``name.svg``; the SVG carries the tips as ``<title>`` elements and the series as
``data-series`` attributes, with every id prefixed by the figure's name so that several figures can
be inlined in one page. :data:`SCRIPT` is the page script that makes the legends clickable.
"""

from __future__ import annotations

import io
import re
import weakref
from contextlib import contextmanager
from pathlib import Path

from methods._util import atomic_path, write_atomic

COLUMN_W, TEXT_W = 3.5, 7.1  # inches: one column / the full text width of a two-column paper
WIDTHS = {"column": COLUMN_W, "text": TEXT_W}
HEIGHT = 2.4  # inches: the height of a one-row figure
DPI = 300
MAX_LEGEND = 12

RC = {
    "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"],
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7,
    "legend.title_fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7, "figure.titlesize": 8,
    "lines.linewidth": 1.2, "lines.markersize": 4, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5,
    "savefig.bbox": None, "savefig.pad_inches": 0.0, "pdf.fonttype": 42,
    "figure.constrained_layout.use": True, "figure.constrained_layout.h_pad": 0.03,
    "figure.constrained_layout.w_pad": 0.03,
    # SVG for the HTML report: text stays text (small, selectable), and ids do not change from run to run
    "svg.fonttype": "none", "svg.hashsalt": "privmark",
}

# -- palettes ------------------------------------------------------------------------------------
#: Okabe-Ito, by method; :data:`EXTRA_METHOD_COLORS` for methods without a colour of their own
METHOD_COLORS = {"plaintext": "#000000", "he": "#0072B2", "federated": "#009E73", "dp": "#D55E00"}
EXTRA_METHOD_COLORS = ["#CC79A7", "#E69F00", "#56B4E9", "#F0E442"]
#: Paul Tol's muted scheme, in order of each figure's phases (largest first); grey for "other"
PHASE_PALETTE = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677",
                 "#882255", "#AA4499"]
OTHER_PHASE = "#DDDDDD"
STARTUP_COLOR, STARTUP_HATCH = "#6E6E6E", "////"
#: Paul Tol's vibrant scheme, by party role
PARTY_COLORS = {"owner": "#EE7733", "server": "#0077BB", "keyholder": "#EE3377", "clients": "#33BBEE"}
EXTRA_PARTY_COLORS = ["#CC3311", "#009988"]
OTHER_PARTY = "#BBBBBB"
OTHER = "other"  # the folded parts of a breakdown: "other phases", "other parties"


def method_color(method: str) -> str:
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    return EXTRA_METHOD_COLORS[sum(map(ord, method)) % len(EXTRA_METHOD_COLORS)]


def is_startup(phase: str) -> bool:
    """Engine start-up (Ray, SuperLink and SuperNodes, HE services): a phase apart from training."""
    name = phase.lower().replace("-", "_")
    return name in ("startup", "start_up") or name.endswith(("_start", "_startup"))


def phase_colors(phases: list[str]) -> dict[str, str]:
    """A colour for each phase name, in the given order; start-up and "other" keep their own."""
    out, i = {}, 0
    for p in phases:
        if is_startup(p):
            out[p] = STARTUP_COLOR
        elif p.startswith(OTHER):
            out[p] = OTHER_PHASE
        else:
            out[p] = PHASE_PALETTE[i % len(PHASE_PALETTE)]
            i += 1
    return out


def party_group(party: str) -> str:
    """The role a party plays: ``client-3`` is one of the "clients"; other names are themselves."""
    return "clients" if re.fullmatch(r"clients?[-_ ]?\d*", party) else party


def party_colors(parties: list[str]) -> dict[str, str]:
    out, i = {}, 0
    for p in parties:
        if p in PARTY_COLORS:
            out[p] = PARTY_COLORS[p]
        elif p.startswith(OTHER):
            out[p] = OTHER_PARTY
        else:
            out[p] = EXTRA_PARTY_COLORS[i % len(EXTRA_PARTY_COLORS)]
            i += 1
    return out


def group_minor(parts, keep: int, protect=lambda name: False, other: str = OTHER):
    """``parts`` (a DataFrame, one column per part) with at most ``keep`` columns: the largest parts
    (by total) stay, the rest are summed into one column named ``other``. Columns for which
    ``protect`` is true always stay (start-up), and keep their order at the front."""
    keep = max(keep, 1)
    protected = [c for c in parts.columns if protect(c)]
    rest = sorted((c for c in parts.columns if c not in protected), key=lambda c: -parts[c].sum())
    room = keep - len(protected)
    if len(rest) <= room:
        return parts[protected + rest]
    kept, folded = rest[:max(room - 1, 0)], rest[max(room - 1, 0):]
    out = parts[protected + kept].copy()
    out[other] = parts[folded].sum(axis=1)
    return out


# -- figures -------------------------------------------------------------------------------------
@contextmanager
def style():
    import matplotlib.pyplot as plt

    with plt.rc_context(RC):
        yield


def new_figure(width: str = "column", height: float = HEIGHT, **subplots):
    """``(fig, axes)`` of ``plt.subplots`` at a paper width (``"column"`` or ``"text"``)."""
    import matplotlib.pyplot as plt

    if width not in WIDTHS:
        raise ValueError(f"figure width {width!r}; expected one of {sorted(WIDTHS)}")
    fig, axes = plt.subplots(figsize=(WIDTHS[width], height), **subplots)
    _state(fig)["width"] = width
    return fig, axes


_STATE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _state(fig) -> dict:
    return _STATE.setdefault(fig, {"n": 0, "tips": {}, "series": {}, "labels": {}})


def _gid(fig, artist) -> str:
    st = _state(fig)
    if not artist.get_gid():
        st["n"] += 1
        artist.set_gid(f"pm{st['n']}")
    return artist.get_gid()


def _artists(obj):
    """The artists inside a container (errorbar, bar) or a list of them."""
    if isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _artists(o)
    elif hasattr(obj, "get_children") and type(obj).__name__.endswith("Container"):
        for o in obj.get_children():
            yield from _artists(o)
    elif obj is not None:
        yield obj


def series(fig, artists, label: str) -> None:
    """Mark ``artists`` (an artist, a container or a list) as the series of the legend entry ``label``."""
    st = _state(fig)
    key = st["labels"].setdefault(label, f"s{len(st['labels']) + 1}")
    for a in _artists(artists):
        st["series"][_gid(fig, a)] = key


def tip(fig, artist, text: str) -> None:
    """A hover text for ``artist`` in the HTML report."""
    _state(fig)["tips"][_gid(fig, artist)] = text


def hit_points(ax, xs, ys, tips: list[str], label: str | None = None) -> None:
    """Invisible markers at ``(xs, ys)``, each with its hover text (and in the series ``label``)."""
    for x, y, text in zip(xs, ys, tips, strict=True):
        if not (y == y):
            continue
        (marker,) = ax.plot([x], [y], linestyle="none", marker="o", markersize=7, alpha=0.0)
        tip(ax.figure, marker, text)
        if label is not None:
            series(ax.figure, marker, label)


def _mark_legends(fig) -> None:
    """Each legend entry whose label is a series toggles that series in the report."""
    st = _state(fig)
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for leg in legends:
        for handle, text in zip(leg.legend_handles, leg.get_texts(), strict=False):
            key = st["labels"].get(text.get_text())
            if key is None:
                continue
            for a in (handle, text):
                if a is not None:
                    st["series"][_gid(fig, a)] = key + " legend"


def svg_markup(fig, prefix: str) -> str:
    """The figure as SVG for inlining in HTML: no XML prolog, ids prefixed with ``prefix``, tips as
    ``<title>``, series as ``data-series`` (``data-legend`` on legend entries)."""
    import html

    _mark_legends(fig)
    st = _state(fig)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]

    def group(m: re.Match) -> str:
        gid = m.group(1)
        attrs = f' id="{prefix}{gid}"'
        key = st["series"].get(gid)
        if key:
            name, _, legend = key.partition(" ")
            attrs += f' data-series="{name}"' + (' data-legend="1"' if legend else "")
        out = f"<g{attrs}>"
        if gid in st["tips"]:
            out += f"<title>{html.escape(st['tips'][gid])}</title>"
        return out

    svg = re.sub(r'<g id="([^"]+)">', group, svg)
    svg = re.sub(r'(?<=[\s<])id="(?!' + re.escape(prefix) + r')([^"]+)"', rf'id="{prefix}\1"', svg)
    svg = re.sub(r'(href="#)([^"]+)"', rf'\1{prefix}\2"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}\1)", svg)
    return svg.replace("<svg ", '<svg class="pm-figure" ', 1)


def save(fig, out_dir: Path, name: str) -> dict:
    """``name.pdf``, ``name.png`` (at :data:`DPI`) and ``name.svg`` (for the HTML report) in
    ``out_dir``, each at the figure's declared size; closes the figure. Returns the three paths
    (keys ``pdf``, ``png``, ``svg``) and the size (``width_in``, ``height_in``)."""
    import matplotlib.pyplot as plt

    paths = {}
    for ext in ("pdf", "png"):
        path = Path(out_dir) / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=DPI, format=ext, metadata={"CreationDate": None} if ext == "pdf" else {})
        paths[ext] = str(path)
    path = Path(out_dir) / f"{name}.svg"
    write_atomic(path, svg_markup(fig, prefix=re.sub(r"[^A-Za-z0-9_-]", "-", name) + "-"))
    paths["svg"] = str(path)
    paths["width_in"], paths["height_in"] = (float(v) for v in fig.get_size_inches())
    plt.close(fig)
    return paths


#: the report's script: a click on a legend entry hides its series (and shows it again)
SCRIPT = """
document.querySelectorAll('svg.pm-figure').forEach(function (svg) {
  svg.querySelectorAll('[data-legend]').forEach(function (entry) {
    entry.style.cursor = 'pointer';
    entry.addEventListener('click', function () {
      var key = entry.getAttribute('data-series');
      var hidden = svg.classList.toggle('pm-off-' + key);
      svg.querySelectorAll('[data-series="' + key + '"]').forEach(function (el) {
        if (el.hasAttribute('data-legend')) { el.style.opacity = hidden ? '0.35' : ''; }
        else { el.style.display = hidden ? 'none' : ''; }
      });
    });
  });
});
"""
