"""The warm Deployment Engine runtime's parts on their own: the SuperNode's short waits
and its refusals (:mod:`methods.federated.supernode`), and the ClientApp launcher's arguments
(:mod:`methods.federated.clientapp_exec`). End to end they run in test_deployment.py."""

import pytest

from methods.federated import supernode
from methods.federated.clientapp_exec import _parse


def test_clock_turns_the_idle_wait_into_a_backoff_and_the_reply_wait_short(monkeypatch):
    slept = []
    monkeypatch.setattr(supernode._time, "sleep", slept.append)
    clock = supernode.Clock(max_idle=0.2)
    for _ in range(12):
        clock.sleep(3)  # the SuperNode's fixed wait after an empty pull
    assert slept[0] == supernode.MIN_IDLE
    assert all(b >= a for a, b in zip(slept, slept[1:], strict=False)) and max(slept) == 0.2
    clock.reset()  # a message arrived
    clock.sleep(3)
    clock.sleep(0.5)  # waiting for the ClientApp's reply
    assert slept[-2:] == [supernode.MIN_IDLE, supernode.BUSY]
    assert clock.monotonic() > 0  # the rest is the time module


def test_clock_refuses_an_idle_poll_out_of_range():
    with pytest.raises(ValueError, match="idle poll 5"):
        supernode.Clock(max_idle=5)
    with pytest.raises(ValueError, match="idle poll 0"):
        supernode.Clock(max_idle=0)


def test_install_patches_only_the_supernode_loop(monkeypatch):
    import time

    from flwr.supernode import start_client_internal as loop

    monkeypatch.setattr(loop, "time", loop.time)
    monkeypatch.setattr(loop, "_pull_and_store_message", loop._pull_and_store_message)
    clock = supernode.install(0.1)
    assert loop.time is clock and clock.max_idle == 0.1
    assert time.sleep is not clock.sleep  # the time module itself is untouched


def test_pull_wrapper_resets_the_backoff_when_a_message_came(monkeypatch):
    from flwr.supernode import start_client_internal as loop

    answers = iter([None, 7])
    monkeypatch.setattr(loop, "_pull_and_store_message", lambda **_: next(answers))
    monkeypatch.setattr(loop, "time", loop.time)
    clock = supernode.install(0.2)
    clock.idle = 0.2
    assert loop._pull_and_store_message() is None and clock.idle == 0.2  # nothing pulled
    assert loop._pull_and_store_message() == 7 and clock.idle == supernode.MIN_IDLE


def test_supernode_module_refuses_bad_options():
    with pytest.raises(SystemExit, match="--idle-poll needs a number of seconds"):
        supernode.main(["--idle-poll", "x"])
    with pytest.raises(SystemExit, match="--idle-poll: idle poll 9"):
        supernode.main(["--idle-poll", "9"])
    with pytest.raises(SystemExit, match="--warm-clientapp needs --isolation process"):
        supernode.main(["--warm-clientapp", "methods.federated.client_app", "--insecure"])
    with pytest.raises(SystemExit, match="--warm-clientapp needs a value"):
        supernode.main(["--insecure", "--warm-clientapp"])


def test_clientapp_launcher_arguments():
    args = _parse(["--runtime-api-address", "127.0.0.1:9", "--insecure", "--preload", "json"])
    assert args.preload == ["json"] and args.min_poll <= args.max_poll
    with pytest.raises(SystemExit):
        _parse(["--runtime-api-address", "127.0.0.1:9"])  # neither TLS nor --insecure
    with pytest.raises(SystemExit):
        _parse(["--runtime-api-address", "127.0.0.1:9", "--insecure", "--min-poll", "1", "--max-poll", "0.5"])
