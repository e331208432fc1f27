"""Shorter waits in Flower 1.42's object transfer and FAB installation, for the warm runtime.

Two fixed costs of every Deployment Engine message that the app cannot avoid otherwise:

- **Object pulls back off from 1 s.** A message's content travels as objects, pulled one by one
  (``flwr.supercore.inflatable.inflatable_utils.pull_objects``). An object that is not there yet
  (``ObjectUnavailableError``: the sender is still pushing it) is asked for again after 1 s, then
  2, 4, up to 10 s (``PULL_INITIAL_BACKOFF``, ``PULL_BACKOFF_CAP``). Every hop of a message
  (ServerApp → SuperLink → SuperNode → ClientApp and back) can meet an object a few milliseconds
  early and then waits a whole second. :func:`shorten_object_pulls` makes that back-off start at
  :data:`PULL_INITIAL_S` and stop growing at :data:`PULL_CAP_S`, with as many more tries as keep
  the time an object may take to arrive what it was (Flower's 500 tries at up to 10 s; its 2 h
  limit on the whole pull stays).
- **Every ClientApp task installs the FAB.** ``run_clientapp`` calls ``install_from_fab`` for each
  task, which extracts the whole archive into a temporary directory and checks every file's hash
  before it finds the app already installed under ``<FLWR_HOME>/apps/<...>.<fab hash>`` and
  returns. :func:`install_fab_once` looks for that directory first (the hash in its name is the
  sha256 of the FAB's bytes, computed here) and installs, with Flower's own function, only when it
  is absent: the first task of a node installs and verifies, later ones load what it installed.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

PULL_INITIAL_S = 0.01
PULL_CAP_S = 0.2


def _short_backoff(pull_objects):
    if getattr(pull_objects, "_privmark_short", False):
        return pull_objects

    from flwr.supercore.constant import PULL_BACKOFF_CAP, PULL_MAX_TRIES_PER_OBJECT

    @functools.wraps(pull_objects)
    def pull(*args, **kwargs):
        cap = kwargs.get("backoff_cap", PULL_BACKOFF_CAP)
        tries = kwargs.get("max_tries_per_object", PULL_MAX_TRIES_PER_OBJECT)
        if cap > PULL_CAP_S:
            kwargs["backoff_cap"] = PULL_CAP_S
            if tries is not None:
                kwargs["max_tries_per_object"] = int(tries * cap / PULL_CAP_S)
        kwargs["initial_backoff"] = min(kwargs.get("initial_backoff", PULL_INITIAL_S), PULL_INITIAL_S)
        return pull_objects(*args, **kwargs)

    pull._privmark_short = True
    return pull


def shorten_object_pulls(*modules) -> None:
    """Replace ``pull_objects`` in each module (where Flower's callers look it up) with one whose
    retries after an unavailable object wait :data:`PULL_INITIAL_S` doubling to :data:`PULL_CAP_S`."""
    from flwr.supercore.inflatable import inflatable_utils

    for module in (inflatable_utils, *modules):
        module.pull_objects = _short_backoff(module.pull_objects)


def install_fab_once() -> None:
    """In this process, make ``run_clientapp``'s FAB installation a lookup when the FAB is
    installed already (see the module's docstring)."""
    from flwr.cli import install
    from flwr.common.constant import APP_DIR, FAB_HASH_TRUNCATION
    from flwr.supercore.utils import get_flwr_home
    from flwr.supernode.runtime import run_clientapp

    original = install.install_from_fab
    if getattr(run_clientapp.install_from_fab, "_privmark_once", False):
        return

    @functools.wraps(original)
    def install_from_fab(fab_file, install_dir=None, skip_prompt=False):
        if isinstance(fab_file, bytes) and skip_prompt:
            short = hashlib.sha256(fab_file).hexdigest()[:FAB_HASH_TRUNCATION]
            base = Path(install_dir).expanduser() if install_dir else get_flwr_home()
            found = sorted((base / APP_DIR).glob(f"*.{short}"))
            if len(found) == 1 and found[0].is_dir():
                return found[0]
        return original(fab_file, install_dir, skip_prompt)

    install_from_fab._privmark_once = True
    run_clientapp.install_from_fab = install_from_fab
