"""What a run's traffic costs on a network: the model every record and report uses.

A link is a bandwidth (Mbit/s, ``None``: unshaped) and a round-trip time (ms). A run that moved
``bytes_total`` bytes in ``round_trips`` request/reply rounds spends, on that link,

    modelled_s = bytes_total * 8 / (bandwidth_mbit * 1e6) + round_trips * rtt_ms / 1000

on top of its compute (no overlap of transfer and compute is assumed, none is subtracted; methods
that move nothing cost 0). The HE transport applies the same link for real (``method.transport=grpc``:
a token bucket per direction on the socket, RTT/2 each way), which is how the model is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: the profiles shipped in conf/network (name -> bandwidth Mbit/s, RTT ms), for reports
PROFILES: dict[str, tuple[float | None, float]] = {"loopback": (None, 0.0), "lan": (1000.0, 0.5),
                                                   "wan": (100.0, 40.0)}


def modelled_seconds(bytes_total: float, round_trips: float, bandwidth_mbit: float | None,
                     rtt_ms: float) -> float:
    """Seconds the bytes and round trips take on the link (0 for an unshaped, zero-RTT one)."""
    if bytes_total < 0 or round_trips < 0:
        raise ValueError(f"bytes_total={bytes_total!r}, round_trips={round_trips!r}; expected >= 0")
    transfer = bytes_total * 8 / (bandwidth_mbit * 1e6) if bandwidth_mbit else 0.0
    return float(transfer + round_trips * (rtt_ms or 0.0) / 1000.0)


def network_cost(costs: Mapping[str, Any], network: Mapping[str, Any] | None,
                 measured: bool = False) -> dict[str, Any]:
    """``costs.network`` of a record: the profile, and what the record's own ``bytes_total`` and
    ``rounds`` cost on it; ``measured`` says whether the run's traffic really crossed that link."""
    net = dict(network or {})
    bw, rtt = net.get("bandwidth_mbit"), float(net.get("rtt_ms") or 0.0)
    return {"profile": net.get("name", "loopback"), "bandwidth_mbit": bw, "rtt_ms": rtt,
            "modelled_s": modelled_seconds(float(costs.get("bytes_total") or 0),
                                           float(costs.get("rounds") or 0), bw, rtt),
            "measured": bool(measured)}


def was_measured(costs: Mapping[str, Any], network: Mapping[str, Any] | None) -> bool:
    """Whether a record's traffic went through a shaped link of this profile (the HE transport
    says so in ``costs.wire.measured``)."""
    net = dict(network or {})
    if not (net.get("bandwidth_mbit") or net.get("rtt_ms")):
        return False
    wire = costs.get("wire") or {}
    return bool(wire.get("measured")) and (wire.get("network") or {}).get("name") == net.get("name")
