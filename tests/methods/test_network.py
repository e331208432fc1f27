"""The network cost model every record and the report use (methods/network.py)."""

import pytest

from methods.network import modelled_seconds, network_cost, was_measured

WAN = {"name": "wan", "bandwidth_mbit": 100.0, "rtt_ms": 40.0}


def test_bytes_over_bandwidth_plus_round_trips_times_rtt():
    assert modelled_seconds(125_000_000, 0, 1000.0, 0.0) == pytest.approx(1.0)
    assert modelled_seconds(125_000_000, 10, 100.0, 40.0) == pytest.approx(10.0 + 0.4)
    assert modelled_seconds(10**9, 5, None, 2.0) == pytest.approx(0.01)  # unshaped: RTTs only
    with pytest.raises(ValueError, match="expected >= 0"):
        modelled_seconds(-1, 0, 1.0, 0.0)


def test_a_record_that_moves_nothing_costs_nothing():
    cost = network_cost({"bytes_total": 0, "rounds": 0}, WAN)
    assert cost == {"profile": "wan", "bandwidth_mbit": 100.0, "rtt_ms": 40.0, "modelled_s": 0.0,
                    "measured": False}
    assert network_cost({"bytes_total": 12_500_000, "rounds": 20}, WAN)["modelled_s"] == pytest.approx(1.8)
    assert network_cost({}, None)["profile"] == "loopback"


def test_measured_only_through_a_shaped_link_of_that_profile():
    wire = {"measured": True, "network": WAN}
    assert was_measured({"wire": wire}, WAN)
    assert not was_measured({"wire": wire}, {**WAN, "name": "lan"})
    assert not was_measured({"wire": {**wire, "measured": False}}, WAN)
    assert not was_measured({}, WAN)
    assert not was_measured({"wire": wire}, {"name": "loopback", "bandwidth_mbit": None, "rtt_ms": 0.0})
