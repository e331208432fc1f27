"""The check every job's config passes before Hydra makes its run dir (or a sweep its sweep dir).

:func:`check` runs every check that needs no data on one composed job; :class:`CheckBeforeRunDir`, a
Hydra callback named in conf/config.yaml, runs it on the job or on every job of a sweep. Schemas and
the one :class:`~benchmarks.config.ConfigError` are in :mod:`benchmarks.config`.
"""

from __future__ import annotations

import math
import sys
from typing import NoReturn

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from benchmarks.config import (
    METHOD_SCHEMAS,
    SEED_MAX,
    Config,
    ConfigError,
    DatasetConfig,
    _quote,
    conform,
)


def _known_datasets() -> set[str]:
    from datasets._config import known_names

    return set(known_names())


def check_choice_names(cfg: DictConfig, choices) -> None:
    """``dataset.name`` and ``method.name`` label the record and the run dir: they must be the names
    of the config files chosen (``dataset=bank_full`` -> ``bank_full``), not free text."""
    for group in ("dataset", "method"):
        chosen, name = choices.get(group), (cfg.get(group) or {}).get("name")
        if chosen is not None and name != chosen:
            raise ConfigError(f"{group}.name={_quote(name)} does not match the chosen {group} config "
                              f"{chosen!r}; pick another with {group}=<name>, do not rename it")


def apply_per_choice(cfg: DictConfig) -> DictConfig:
    """Merge an experiment's ``per_method.<method>`` into ``method`` and ``per_dataset.<dataset>`` into
    ``dataset``, then drop both tables: the job's config (and its hash) is what it really ran.

    This is how one sweep over all methods sets options only some methods have (small HE
    parameters in ``smoke``), which a ``method.x`` override cannot do for a method without ``x``.
    Every entry is checked against its method's (or the dataset) schema, whichever method runs.
    """
    cfg = cfg.copy()
    with open_dict(cfg):
        for table, group, schemas in (("per_method", "method", METHOD_SCHEMAS),
                                      ("per_dataset", "dataset", None)):
            entries = cfg.pop(table, None)
            entries = OmegaConf.create({}) if entries is None else entries
            if not isinstance(entries, DictConfig):
                raise ConfigError(f"{table} must map a {group} name to its overrides; got {_quote(entries)}")
            known = set(schemas) if schemas else _known_datasets()
            for name, values in entries.items():
                if name not in known:
                    raise ConfigError(f"{table}.{name}: unknown {group}; expected one of {sorted(known)}")
                if values is not None and not isinstance(values, DictConfig):
                    raise ConfigError(f"{table}.{name} must be a mapping of {group} options; "
                                      f"got {_quote(values)}")
                if values:
                    what = f"a parameter of {group}={name}" if schemas else "a dataset setting"
                    conform(schemas[name] if schemas else DatasetConfig, values, f"{table}.{name}", what,
                            complete=False)
            mine = entries.get((cfg.get(group) or {}).get("name"))
            if mine:
                cfg[group] = OmegaConf.merge(cfg[group], mine)
    return cfg


def _integer(cfg: DictConfig, key: str, low: int, high: int | None = None, expected: str = "") -> None:
    value = cfg[key]
    bound = f"an integer >= {low}" if high is None else f"an integer between {low} and {high:,}"
    if (not isinstance(value, int) or isinstance(value, bool) or value < low
            or (high is not None and value > high)):
        raise ConfigError(f"{key}={_quote(value)}; expected {expected or bound}")


def _top_level(cfg: DictConfig) -> None:
    _integer(cfg, "k", 2, expected="k >= 2 segments (an integer)")
    _integer(cfg, "seed", 0, SEED_MAX)
    _integer(cfg, "split_seed", 0, SEED_MAX)
    threshold = cfg.threshold
    if (not isinstance(threshold, int | float) or isinstance(threshold, bool)
            or not 0 < float(threshold) < 1):
        raise ConfigError(f"threshold={_quote(threshold)}; expected a probability in (0, 1)")
    targeting_config(cfg.targeting)
    if cfg.silhouette_sample is not None:
        _integer(cfg, "silhouette_sample", 2,
                 expected="an integer >= 2 (test rows sampled for the silhouette) or null")


def targeting_config(t: DictConfig) -> None:
    """The campaign's economics: shares in (0, 1], a cost and a value >= 0, >= 2 gains points."""
    shares = list(t.shares)
    if not shares or not all(0 < float(x) <= 1 for x in shares):
        raise ConfigError(f"targeting.shares={shares!r}; expected a non-empty list of fractions in (0, 1]")
    for key in ("cost_per_call", "value_per_subscription"):
        v = t[key]
        if not (math.isfinite(v) and v >= 0):
            raise ConfigError(f"targeting.{key}={v!r}; expected a finite amount >= 0")
    if t.gains_points < 2:
        raise ConfigError(f"targeting.gains_points={t.gains_points!r}; expected an integer >= 2")


def check_method(method: DictConfig, k: int = 2, seed: int = 0) -> None:
    """The method's own parameter checks that need no data (its ``check_params``, when it has one)."""
    from methods import build

    built = build(method, n_clusters=k, random_state=seed)
    check_params = getattr(built, "check_params", None)
    if callable(check_params):
        try:
            check_params()
        except ConfigError:
            raise
        except ValueError as exc:  # a method whose checks raise plain ValueErrors
            raise ConfigError(f"method={method.name}: {exc}") from exc


def network_config(network: DictConfig) -> None:
    """A network profile's ranges: a positive bandwidth (or null, unshaped) and a round-trip time
    of zero or more milliseconds."""
    bw, rtt = network.get("bandwidth_mbit"), network.get("rtt_ms")
    if bw is not None and not (math.isfinite(bw) and bw > 0):
        raise ConfigError(f"network.bandwidth_mbit={bw!r} (profile {network.get('name')!r}): expected a "
                          "positive number of Mbit/s, or null for an unshaped link")
    if not (math.isfinite(rtt) and rtt >= 0):
        raise ConfigError(f"network.rtt_ms={rtt!r} (profile {network.get('name')!r}): expected a "
                          "round-trip time of 0 or more milliseconds")


def check(cfg: DictConfig, choices=None) -> DictConfig:
    """Every check that needs no data, on one job's composed config; returns the job's config
    (``per_method`` / ``per_dataset`` applied, each group conformed to its schema).

    The one entry point: Hydra runs it before the run dir exists (:class:`CheckBeforeRunDir`), the
    runner again on the job it is given. A refusal is a :class:`ConfigError` naming the key.
    """
    import datasets
    from benchmarks.attacks import leakage_config

    plain = cfg.copy() if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
    with open_dict(plain):
        plain.pop("hydra", None)
        for group in ("dataset", "method", "leakage", "network"):
            if isinstance(plain.get(group), DictConfig) and "defaults" in plain[group]:
                del plain[group]["defaults"]  # a group file read without Hydra: its schema line
    if choices is not None:
        check_choice_names(plain, choices)
    job = apply_per_choice(plain)
    name = (job.get("method") or {}).get("name")
    if name not in METHOD_SCHEMAS:
        raise ConfigError(f"method={name!r} is unknown; expected one of {sorted(METHOD_SCHEMAS)}")
    try:  # the method's interpolations (dp: ${dataset.categorical}) point into the whole config
        resolved = OmegaConf.to_container(job, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{exc.full_key}: {str(exc).splitlines()[0]}") from None
    method = resolved.pop("method")
    conformed = conform(Config, resolved, "", "a config key")
    with open_dict(conformed):
        conformed.method = conform(METHOD_SCHEMAS[name], method, "method", f"a parameter of method={name}")
    _top_level(conformed)
    datasets.check_config(conformed.dataset)
    check_method(conformed.method, conformed.k, conformed.seed)
    leakage_config(conformed.leakage)
    network_config(conformed.network)
    return job


def _job_label(overrides) -> str:
    return " ".join(overrides) or "(no overrides)"


def _refuse(exc: Exception) -> NoReturn:
    # Hydra turns an exception in a callback into a warning and goes on: only an exit stops it
    what = str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
    sys.stderr.write(f"config refused: {what}\n")
    sys.stderr.flush()
    raise SystemExit(1)


class CheckBeforeRunDir(Callback):
    """Hydra callback (``hydra.callbacks`` in conf/config.yaml): :func:`check` on the job, or on every
    job of a sweep, before Hydra makes the run dir or the sweep dir. A refusal prints
    ``config refused: <message>`` and exits with status 1."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        try:
            check(config, config.hydra.runtime.choices)
        except Exception as exc:  # anything the check raises stops the run (Hydra would go on)
            _refuse(exc)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.global_hydra import GlobalHydra
        from hydra.core.override_parser.overrides_parser import OverridesParser

        target = str(config.hydra.sweeper.get("_target_", ""))
        if not target.endswith("BasicSweeper") or not GlobalHydra.instance().is_initialized():
            return  # another sweeper picks its jobs itself: each job is checked when it starts
        loader = GlobalHydra.instance().hydra.config_loader
        # the jobs BasicSweeper will launch: its params, then the command line's overrides
        params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
        params += list(config.hydra.overrides.task)
        overrides = OverridesParser.create(config_loader=loader).parse_overrides(params)
        for batch in BasicSweeper.split_arguments(overrides, None):
            for job in batch:
                try:  # a job that does not compose is refused here too, before the sweep dir
                    job_cfg = loader.load_sweep_config(config, list(job))
                    check(job_cfg, job_cfg.hydra.runtime.choices)
                except Exception as exc:
                    cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
                    _refuse(ConfigError(f"sweep job {_job_label(job)}: {exc}{cause}"))
