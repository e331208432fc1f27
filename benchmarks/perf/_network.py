"""``--transport`` / ``--network`` for the HE benchmarks: where the parties run and the link between them."""

from __future__ import annotations

from omegaconf import OmegaConf

from methods._util import CONF
from methods.network import modelled_seconds


def add_arguments(parser) -> None:
    parser.add_argument("--transport", default="local", choices=["local", "grpc"],
                        help="local: one process tree; grpc: server and key holder as services")
    parser.add_argument("--network", default="loopback",
                        help="a conf/network profile (loopback, lan, wan, yours), applied with grpc")


def profile(name: str) -> dict:
    """A network profile from conf/network/<name>.yaml (``defaults`` dropped)."""
    path = CONF / "network" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (CONF / "network").glob("*.yaml"))
        raise SystemExit(f"--network {name!r}: no conf/network/{name}.yaml; expected one of {known}")
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    cfg.pop("defaults", None)
    return {"name": cfg.get("name", name), "bandwidth_mbit": cfg.get("bandwidth_mbit"),
            "rtt_ms": float(cfg.get("rtt_ms") or 0.0)}


def summary(transport: str, network: dict, wall_s: float, bytes_total: int, rounds: int, customers: int,
            wire: dict | None) -> dict:
    """The fields printed last: measured wall, what the bytes and rounds cost on the profile, bytes per
    customer; ``floor`` (the protocol's lower bound on bytes per customer) is not derived here."""
    links = (wire or {}).get("links", {})
    return {"transport": transport, "network": network, "measured": bool((wire or {}).get("measured")),
            "measured_wall_s": round(wall_s, 3),
            "startup_s": round(float((wire or {}).get("startup_s") or 0.0), 3),
            "modelled_network_s": round(modelled_seconds(bytes_total, rounds, network["bandwidth_mbit"],
                                                         network["rtt_ms"]), 3),
            "bytes_per_customer": round(bytes_total / customers, 1) if customers else None,
            "wire_bytes": {role: link["wire_up"] + link["wire_down"] for role, link in links.items()},
            # seconds the calls to the server spent crossing (call time minus the service's own)
            "server_link_transit_s": round(links["server"]["transit_s"], 3) if "server" in links else None,
            "floor": None}
