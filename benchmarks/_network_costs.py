"""The cost of each method on a network: the report's table and the total-time-against-bandwidth figure.

Both read the records' own bytes and round trips (``bytes_total``, ``rounds``) and the network cost
model of :mod:`methods.network`. A run whose traffic went through a shaped link
(``costs.network.measured``, HE with ``method.transport=grpc``) gives a *measured* total on its
profile; otherwise the total is *modelled*: the method's compute time (its unshaped runs' fit wall
time) plus what its bytes and rounds take on the profile. Where-the-parties-run options
(``method.transport``, ``method.server``, ...) are not variants here: a local run supplies the
compute, a shaped run the measured total of the same method.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import _analysis as A
from methods.network import PROFILES, modelled_seconds

#: options that say where the parties run, not what the method computes
DEPLOYMENT = ("method.transport", "method.server", "method.keyholder", "method.tls", "method.tls_cert",
              "method.token_file", "method.engine")
#: the figure's bandwidth axis (Mbit/s) and its two round-trip times (ms)
BANDWIDTHS = np.logspace(0, 4, 81)
RTTS = (0.5, 40.0)


def _col(rows: pd.DataFrame, name: str, default=None) -> pd.Series:
    return rows[name] if name in rows else pd.Series(default, index=rows.index, dtype=object)


def _with_network(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with ``_profile`` (loopback for records made before profiles) and ``_measured``."""
    rows = rows.copy()
    rows["_profile"] = _col(rows, "network.profile").fillna("loopback").astype(str)
    rows["_measured"] = _col(rows, "network.measured", False).fillna(False).astype(bool)
    return rows


def _profiles(rows: pd.DataFrame) -> dict[str, tuple[float | None, float]]:
    """The shipped profiles, and any other profile a record names (its bandwidth and RTT)."""
    out = dict(PROFILES)
    for name, r in rows.groupby("_profile"):
        if name not in out and "network.rtt_ms" in r:
            bw = r["network.bandwidth_mbit"].dropna()
            out[name] = (float(bw.iloc[0]) if len(bw) else None, float(r["network.rtt_ms"].fillna(0).iloc[0]))
    return out


def cost_rows(rows: pd.DataFrame) -> list[dict]:
    """Per method variant: compute seconds, bytes, rounds and, per profile, network and total
    seconds with whether they were measured."""
    if rows.empty:
        return []
    rows = _with_network(A.add_variants(rows, exclude=DEPLOYMENT))
    profiles = _profiles(rows)
    out = []
    for variant in A.variant_order(rows):
        r = rows[rows["variant"] == variant]
        unshaped = r[~r["_measured"]]
        walls = pd.to_numeric(unshaped["wall_s"], errors="coerce")
        compute = float(walls.mean()) if len(unshaped) else math.nan
        nbytes = float(pd.to_numeric(r["bytes_total"], errors="coerce").fillna(0).mean())
        rounds = float(pd.to_numeric(r["rounds"], errors="coerce").fillna(0).mean())
        entry = {"variant": variant, "label": r["variant_label"].iloc[0], "method": r["method"].iloc[0],
                 "compute_s": compute, "bytes_total": nbytes, "rounds": rounds, "profiles": {}}
        for name, (bw, rtt) in profiles.items():
            shaped = r[r["_measured"] & (r["_profile"] == name)]
            model = modelled_seconds(nbytes, rounds, bw, rtt)
            if len(shaped):
                total = float(pd.to_numeric(shaped["wall_s"], errors="coerce").mean())
                net = total - compute if compute == compute else model
                entry["profiles"][name] = {"network_s": net, "total_s": total, "measured": True,
                                           "modelled_network_s": model}
            else:
                entry["profiles"][name] = {"network_s": model, "total_s": compute + model, "measured": False,
                                           "modelled_network_s": model}
        out.append(entry)
    return out


def _cell(v: float, measured: bool) -> str:
    if v != v:
        return "—"
    return f"{v:,.1f}" + (" (measured)" if measured else "")


def cost_table(rows: pd.DataFrame, profiles=("loopback", "lan", "wan")) -> pd.DataFrame:
    """Every method: compute, network and total seconds on each profile; measured where a run went
    through that link, modelled otherwise."""
    data = []
    for e in cost_rows(rows):
        row = {"Method": e["label"], "Bytes (MiB)": f"{e['bytes_total'] / 2**20:,.1f}",
               "Rounds": f"{e['rounds']:,.0f}", "Compute (s)": _cell(e["compute_s"], False)}
        for p in profiles:
            c = e["profiles"].get(p)
            if c is None:
                continue
            row[f"{p}: network (s)"] = _cell(c["network_s"], c["measured"])
            row[f"{p}: total (s)"] = _cell(c["total_s"], c["measured"])
        data.append(row)
    return pd.DataFrame(data)


def section(doc, rows: pd.DataFrame) -> None:
    """The report's "Cost on a network" block for one setting's rows (main k, largest n)."""
    table = cost_table(rows)
    if table.empty:
        return
    doc.h(3, "Cost on a network")
    doc.p("Compute is the fit wall time of each method's unshaped runs; network = bytes × 8 / bandwidth "
          "+ round trips × RTT from the records' own bytes and rounds (methods/network.py), on loopback "
          "(unshaped), lan (1 Gbit/s, 0.5 ms) and wan (100 Mbit/s, 40 ms). '(measured)': runs whose "
          "traffic crossed that link for real (HE over gRPC with the profile applied); there network = "
          "measured total − compute. Unmarked cells are modelled.")
    doc.table(table)


def figures(rows: pd.DataFrame, setting: str, slug: str, out_dir: Path) -> list:
    """Total time against bandwidth (1 Mbit/s … 10 Gbit/s) at 0.5 and 40 ms RTT, per method; measured
    totals of shaped runs as points."""
    from benchmarks import _style as S
    from benchmarks import figures as F

    if rows.empty:
        return []
    k = A.main_k(rows)
    entries = [e for e in cost_rows(rows[rows["k"] == k]) if e["compute_s"] == e["compute_s"]]
    if not entries:
        return []
    styles = A.styles([e["variant"] for e in entries])
    fig, axes = S.new_figure("text", S.HEIGHT, ncols=len(RTTS), sharey=True)
    for ax, rtt in zip(axes, RTTS, strict=True):
        for e in entries:
            st = styles[e["variant"]]
            total = [e["compute_s"] + modelled_seconds(e["bytes_total"], e["rounds"], bw, rtt)
                     for bw in BANDWIDTHS]
            (line,) = ax.plot(BANDWIDTHS, total, color=st["color"], linestyle=st["linestyle"],
                              label=e["label"])
            S.series(fig, [line], e["label"])
            S.hit_points(ax, BANDWIDTHS, total, [f"{e['label']}: {t:.1f} s at {bw:g} Mbit/s, RTT {rtt:g} ms"
                                                 for bw, t in zip(BANDWIDTHS, total, strict=True)],
                         e["label"])
            for name, c in e["profiles"].items():
                bw, prtt = PROFILES.get(name, (None, None))
                if c["measured"] and bw and prtt == rtt:
                    (point,) = ax.plot([bw], [c["total_s"]], marker=st["marker"], color=st["color"],
                                       linestyle="none")
                    S.tip(fig, point, f"{e['label']}: {c['total_s']:.1f} s measured on {name}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("bandwidth (Mbit/s)")
        ax.set_title(f"RTT {rtt:g} ms")
    axes[0].set_ylabel("fit time on the link (s)")
    axes[-1].legend(frameon=False, loc="upper right")
    name = f"network_time_{slug}_k{k}"
    caption = (f"Fit time on a network, {setting}, k = {k}: compute (unshaped runs) + bytes × 8 / "
               "bandwidth + round trips × RTT from each method's records; points: totals measured through "
               "a shaped link (lan, wan).")
    return [F.figure(fig, out_dir, name, "network", setting, caption)]
