"""The membership-inference ROC plot, rebuilt from stored results (never from a re-run).

``roc_figure(records)`` draws the log-log ROC curves kept in ``privacy.leakage.roc``.
"""

from __future__ import annotations

from collections.abc import Sequence


def _leakage(record: dict) -> dict:
    return (record.get("privacy") or {}).get("leakage") or {}


def _label(rec: dict) -> str:
    eps = (rec.get("privacy") or {}).get("epsilon")
    return f"{rec.get('method')}" + ("" if eps is None else f" (ε={eps:g})")


def roc_figure(records: Sequence[dict], attack: str = "mia",
               references: Sequence[str] = ("rf_mia", "small_mia"), ax=None):
    """Log-log ROC of ``attack`` for each record, plus the leaky references from the first record
    that holds them, and the chance diagonal. Returns the matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 5))
    else:
        fig = ax.figure
    lo = 1e-4
    for rec in records:
        curve = _leakage(rec).get("roc", {}).get(attack)
        if curve:
            auc = _leakage(rec).get(f"{attack}_auc")
            ax.plot(*_positive(curve), label=f"{_label(rec)}: AUC {auc:.3f}")
    for ref in references:
        rec = next((r for r in records if ref in _leakage(r).get("roc", {})), None)
        if rec is not None:
            auc = _leakage(rec).get(f"{ref}_auc")
            ax.plot(*_positive(_leakage(rec)["roc"][ref]), linestyle="--", label=f"{ref}: AUC {auc:.3f}")
    ax.plot([lo, 1], [lo, 1], color="grey", linewidth=0.8, label="chance")
    ax.set(xscale="log", yscale="log", xlim=(lo, 1), ylim=(lo, 1), xlabel="false positive rate",
           ylabel="true positive rate", title=f"membership inference ({attack})")
    ax.legend(fontsize="small", loc="lower right")
    return fig


def _positive(curve: dict) -> tuple[list[float], list[float]]:
    """Points of a stored curve that a log-log plot can show."""
    pts = [(f, t) for f, t in zip(curve["fpr"], curve["tpr"], strict=True) if f > 0 and t > 0]
    return [p[0] for p in pts], [p[1] for p in pts]
