"""Privacy techniques behind one interface (:mod:`methods.base`); ``build`` makes one from config."""

from __future__ import annotations

import importlib
import inspect

from methods.base import Costs, Method, PartyCost, Privacy

__all__ = ["METHODS", "ConfigError", "Costs", "Method", "PartyCost", "Privacy", "build", "method_class"]

#: method name -> "module:Class"; modules are imported on use (each pulls heavy dependencies).
METHODS = {
    "plaintext": "methods.plaintext:PlaintextMethod",
    "he": "methods.he:HEMethod",
    "federated": "methods.federated:FederatedMethod",
    "dp": "methods.dp:DPMethod",
}


def __getattr__(name: str):
    # ConfigError lives with the config schema (Hydra), which the apps' processes do not need
    if name == "ConfigError":
        from benchmarks.config import ConfigError

        return ConfigError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def method_class(name: str) -> type:
    from benchmarks.config import ConfigError

    if name not in METHODS:
        raise ConfigError(f"method={name!r} is unknown; expected one of {sorted(METHODS)}")
    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build(cfg, n_clusters: int, random_state: int) -> Method:
    """A method from its config (``name`` plus constructor parameters)."""
    from benchmarks.config import ConfigError

    params = dict(cfg)
    params.pop("defaults", None)  # a conf/method file read without Hydra: the line naming its schema
    name = params.pop("name", None)
    cls = method_class(name)
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"method.{unknown[0]} is not a parameter of method={name}; expected one of "
            f"{sorted(p for p in accepted if p not in ('n_clusters', 'random_state'))}"
        )
    return cls(n_clusters=n_clusters, random_state=random_state, **params)
