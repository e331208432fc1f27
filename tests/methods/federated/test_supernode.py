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


class FakeTime:
    """A clock that moves only when slept on."""

    def __init__(self):
        self.now, self.slept = 100.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_clock_paces_the_idle_pulls_by_the_shorter_of_the_last_two_intervals(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(supernode, "_time", fake)
    clock = supernode.Clock(max_idle=0.2, pace=0.6)

    def message_after(seconds: float) -> None:
        fake.now += seconds
        clock.reset()
        fake.slept.clear()

    message_after(0)
    message_after(2.0)  # two messages, one interval: no pause yet
    clock.sleep(3)
    assert fake.slept == [supernode.MIN_IDLE]
    message_after(2.5 - supernode.MIN_IDLE)  # intervals 2.0 and 2.5 s
    fake.now += 0.3  # the task ran and its reply was sent
    clock.sleep(3)  # one pause up to 0.6 x 2 s after the message, then the usual back-off
    clock.sleep(3)
    clock.sleep(3)
    assert fake.slept[0] == pytest.approx(1.2 - 0.3)
    assert fake.slept[1:] == [supernode.MIN_IDLE, supernode.MIN_IDLE * 1.5]
    clock.sleep(0.5)  # waiting for a reply: short, paced or not
    assert fake.slept[-1] == supernode.BUSY

    message_after(9.0)  # one long interval (the server between two phases) paces nothing longer
    clock.sleep(3)
    assert fake.slept[0] == pytest.approx(0.6 * 2.5)
    message_after(10.0)  # two long ones: the pause is at most Flower's own idle wait
    clock.sleep(3)
    assert fake.slept == [supernode.IDLE_WAIT]
    message_after(1.0)  # intervals 13 and 4 s; a task that outlasts 0.6 x 4 s leaves no pause to take
    fake.now += 2.5
    clock.sleep(3)
    assert fake.slept == [supernode.MIN_IDLE]


def test_an_unpaced_clock_only_backs_off(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(supernode, "_time", fake)
    clock = supernode.Clock(max_idle=0.2, pace=0)
    for _ in range(3):
        clock.reset()
        fake.now += 2
    clock.sleep(3)
    assert fake.slept == [supernode.MIN_IDLE]
    with pytest.raises(ValueError, match="pace 1"):
        supernode.Clock(max_idle=0.2, pace=1)


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


def test_object_pulls_retry_after_milliseconds_not_seconds(monkeypatch):
    """An object that is not there yet is asked for again after PULL_INITIAL_S (Flower: 1 s,
    doubling), with as many more tries as keep Flower's patience; Flower's callers get the wrapper."""
    import time
    import types

    from flwr.supercore.inflatable import inflatable_utils
    from flwr.supercore.inflatable.inflatable_utils import ObjectUnavailableError

    from methods.federated import flower_waits

    monkeypatch.setattr(inflatable_utils, "pull_objects", inflatable_utils.pull_objects)
    caller = types.SimpleNamespace(pull_objects=inflatable_utils.pull_objects)
    flower_waits.shorten_object_pulls(caller)
    assert caller.pull_objects._privmark_short and inflatable_utils.pull_objects._privmark_short

    misses = {"a": 2, "b": 0}

    def pull(object_id: str) -> bytes:
        if misses[object_id]:
            misses[object_id] -= 1
            raise ObjectUnavailableError(object_id)
        return object_id.encode()

    t0 = time.perf_counter()
    got = inflatable_utils.pull_objects(["a", "b"], pull, initial_backoff=1, backoff_cap=10)
    elapsed = time.perf_counter() - t0
    assert got == {"a": b"a", "b": b"b"} and misses["a"] == 0
    assert elapsed < 0.8  # Flower's own first retry alone waits 0.8-1.2 s

    seen = {}
    fake = types.SimpleNamespace(pull_objects=lambda ids, fn, **kw: seen.update(kw))
    flower_waits.shorten_object_pulls(fake)
    flower_waits.shorten_object_pulls(fake)  # idempotent: wrapped once
    fake.pull_objects([], None, max_tries_per_object=500, initial_backoff=1, backoff_cap=10)
    assert seen == {"initial_backoff": flower_waits.PULL_INITIAL_S, "backoff_cap": flower_waits.PULL_CAP_S,
                    "max_tries_per_object": int(500 * 10 / flower_waits.PULL_CAP_S)}


def test_a_task_installs_the_fab_only_when_this_node_has_not(monkeypatch, tmp_path):
    """The first task installs the FAB with Flower's own installer (hashes checked); later tasks
    with the same FAB find it installed; another FAB is installed again."""
    from flwr.cli import install
    from flwr.cli.build import build_fab_from_disk
    from flwr.supernode.runtime import run_clientapp

    from methods._util import REPO
    from methods.federated import flower_waits

    monkeypatch.setenv("FLWR_HOME", str(tmp_path))
    calls = []
    original = install.install_from_fab

    def counted(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(install, "install_from_fab", counted)
    monkeypatch.setattr(run_clientapp, "install_from_fab", counted)
    flower_waits.install_fab_once()
    fab = build_fab_from_disk(REPO)
    first = run_clientapp.install_from_fab(fab, skip_prompt=True)
    assert (first / "pyproject.toml").is_file() and len(calls) == 1
    assert run_clientapp.install_from_fab(fab, skip_prompt=True) == first and len(calls) == 1
    import io
    import zipfile

    buf = io.BytesIO(fab)
    with zipfile.ZipFile(buf, "a") as z:  # other bytes: another hash, installed on its own
        z.comment = b"another build"
    other = run_clientapp.install_from_fab(buf.getvalue(), skip_prompt=True)
    assert len(calls) == 2 and other != first and other.is_dir()


def test_the_apps_import_no_estimator_stack():
    """What a ClientApp or ServerApp process imports: Flower and NumPy, not scikit-learn, SciPy,
    pandas or Hydra (seconds of CPU per process, and a larger heap in every forked task)."""
    import subprocess
    import sys

    code = ("import sys, methods.federated.client_app, methods.federated.server_app, methods.federated.supernode\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'pandas', 'hydra'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_launcher_freezes_its_heap_and_tasks_run_without_the_collector():
    import subprocess
    import sys

    code = """
import gc, os
from methods.federated.clientapp_exec import Launcher, _parse
launcher = Launcher(_parse(["--runtime-api-address", "127.0.0.1:9", "--insecure", "--preload", "json"]))
assert gc.get_freeze_count() > 0 and gc.isenabled()
r, w = os.pipe()
launcher._run_task = lambda token: (os.write(w, b"1" if gc.isenabled() else b"0"), os._exit(0))
launcher._launch("token")
os.waitpid(launcher.children.pop(), 0)
print(os.read(r, 1).decode(), "numpy.random" in __import__("sys").modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "True"]
