"""The one config layer: the schemas of every config group (the check every job passes first is in
:mod:`benchmarks.config_check`).

Hydra composes ``conf/`` onto the dataclasses below (each YAML file names its schema in its
``defaults``), so a wrong key or type is refused while the config is composed. Ranges and names
(``k >= 2``, seeds below 2**32, ``dataset.name`` a file in conf/dataset, a method's own parameter
checks) are :func:`~benchmarks.config_check.check`'s, which
:class:`~benchmarks.config_check.CheckBeforeRunDir` runs in Hydra's ``on_run_start`` /
``on_multirun_start``: before the run dir or the sweep dir exists, for every job of a sweep. The
only refusal type is :class:`ConfigError`; datasets and methods raise it too.

The module lives in ``benchmarks`` (the runner owns the config tree) and imports no project module
at import time, so ``datasets`` and ``methods`` can import :class:`ConfigError` from it; importing
it registers the schemas in Hydra's ConfigStore, which any import of those packages does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

SEED_MAX = 2**32 - 1  # numpy and scikit-learn take seeds in [0, 2**32)


class ConfigError(ValueError):
    """Invalid configuration, refused before any work starts; the message names the key and what was
    expected."""


def _quote(value) -> str:
    from datasets.errors import quote

    return quote(value)


# -- schemas -----------------------------------------------------------------------------------

@dataclass
class TargetSpec:
    """The label column of a ``format: csv`` table: its name, the value that counts as positive and,
    optionally, the one negative value (null: any single other value)."""

    column: str = "???"
    positive: str = "???"
    negative: str | None = None


@dataclass
class DatasetConfig:
    """Schema of ``conf/dataset/*.yaml`` (the files document each key). ``format`` picks the loader:
    ``uci`` (Bank Marketing: csv, archive, url...), ``cdnow`` (a file inside an installed package:
    package, package_file, the calibration and holdout windows) or ``csv`` (a researcher's table:
    file, separator, target); the keys of the other formats stay null."""

    name: str = "???"
    format: str = "uci"
    csv: str | None = None
    archive: str | None = None
    csv_sha256: str | None = None
    archive_sha256: str | None = None
    expected_rows: int | None = None
    data_dir: str | None = None
    source: str = "auto"
    url: str | None = None
    download: bool = True
    verify_checksum: bool = True
    include_duration: bool | None = None
    # format: cdnow
    package: str | None = None
    package_file: str | None = None
    calibration_weeks: int | None = None
    holdout_weeks: int | None = None
    # format: synthetic
    source_dataset: str | None = None
    n_rows: int | None = None
    seed: int | None = None
    # format: csv
    file: str | None = None
    separator: str = ","
    target: TargetSpec | None = None
    subsample: int | None = None
    test_size: float = 0.2
    scaling: str = "standard"
    clip: bool = False
    heavy_tailed: list[str] = field(default_factory=list)
    log_heavy_tailed: bool = False
    # {column: a numeric column, sentinel: its value for "never"} or null; Any, so that a dict can
    # replace null on the command line (OmegaConf cannot merge into a null structured node);
    # datasets.check_config checks it
    never_contacted: Any = None
    segment_features: list[str] = "???"  # type: ignore[assignment]
    numeric: dict[str, list[Any]] = "???"  # type: ignore[assignment]  # [low, high]: ints stay ints
    categorical: dict[str, list[str]] = "???"  # type: ignore[assignment]


@dataclass
class PlaintextConfig:
    name: str = "plaintext"
    init: Any = "k-means++"  # "k-means++" or an array of centers
    max_iter: int = 300
    tol: float = 1e-4
    C: float = 1.0
    class_weight: Any = None  # null, "balanced" or {0: w0, 1: w1}
    lr_max_iter: int = 1000
    segments_in_predictor: bool = True  # false: the predictor sees the model features only


@dataclass
class HEConfig:
    name: str = "he"
    scheme: str = "ckks"
    init: Any = "kmeans++"  # a name or an array of centers
    max_iter: int = 300
    tol: float = 1e-4
    permute: bool = False
    workers: int = 1
    poly_modulus_degree: int | None = None
    coeff_mod_bit_sizes: list[int] | None = None
    scale_bits: int | None = None
    frac_bits: int | None = None
    allow_insecure: bool = False
    parallel_rounds: int = 5
    oversampling: int | None = None
    local_trials: int | None = None
    predictor: str = "encrypted"
    C: float = 1.0
    class_weight: Any = None
    lr_max_iter: int = 1000
    lr_n_iter: int = 10
    lr_learning_rate: float = 2.0
    lr_l2: float = 1e-3
    lr_interval: float = 16.0
    lr_class_weight: Any = "balanced"
    lr_clip: float | None = 4.0
    lr_poly_modulus_degree: int | None = None
    lr_coeff_mod_bit_sizes: list[int] | None = None
    lr_scale_bits: int | None = None
    audit_transcript: bool = False
    transport: str = "local"  # local | grpc (methods/he/remote.py)
    server: str | None = None  # HOST:PORT of a running compute-server service
    keyholder: str | None = None  # HOST:PORT of a running key-holder service
    tls: bool = False
    tls_cert: str | None = None  # the given services' certificate (PEM)
    token_file: str | None = None  # the given services' run token
    network: Any = None  # null: the job's network group (the runner fills it in)
    segments_in_predictor: bool = True  # false: the predictor sees the model features only
    backend: str = "local"  # local | ray: where the K-means workers run (methods/he/ray_pool.py)
    ray_address: str | None = None  # HOST:PORT of a running Ray cluster's head, or auto (backend=ray)


@dataclass
class FederatedDP:
    noise_multiplier: float | None = None
    clipping_norm: float = 1.0
    delta: float = 1e-5


@dataclass
class FederatedConfig:
    name: str = "federated"
    num_clients: int | None = 10
    partition: str = "iid"
    alpha: float = 0.5
    partition_column: str = "job"
    init: Any = "k-fed"  # a name or an array of centers
    seed_candidates: int | None = None
    max_iter: int = 300
    tol: float = 1e-4
    rounds: int = 20
    local_epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 0.5
    C: float = 1.0
    dp: FederatedDP | None = field(default_factory=FederatedDP)
    num_cpus: int = 2
    keep_server_view: bool = True
    work_dir: str | None = None
    keep_run_dir: bool = False
    verbose: bool = False
    segments_in_predictor: bool = True  # false: the predictor sees the model features only
    engine: str = "simulation"  # simulation | deployment
    secure: bool = False
    ray_reuse: bool = True
    supernode: str = "warm"  # deployment: warm | stock
    network: Any = None  # null: the job's network group (the runner fills it in)


@dataclass
class DPConfig:
    name: str = "dp"
    epsilon: float = 1.0
    epsilon_split: float = 0.3
    prior_share: float = 0.02
    class_prior: Any = "dp"  # "dp", a probability or null
    feature_bounds: list[float] = field(default_factory=lambda: [0.0, 1.0])
    categorical: Any = None  # the dataset's one-hot blocks (an interpolation in conf/method/dp.yaml)
    kmeans_iter: Any = "auto"  # "auto" or an integer
    kmeans_init: str = "histogram"
    kmeans_init_share: float = 0.3
    kmeans_init_bins: int = 6
    lr_C: Any = "auto"  # "auto" or a number
    lr_jacobian_share: float = 0.1
    lr_C_max: float = 1.0
    lr_max_iter: int = 1000
    log_heavy_tailed: bool = True
    segments_in_predictor: bool = True  # false: the predictor sees the model features only


#: method name -> schema of its config group file (and of ``per_method.<name>``)
METHOD_SCHEMAS: dict[str, type] = {"plaintext": PlaintextConfig, "he": HEConfig,
                                   "federated": FederatedConfig, "dp": DPConfig}


@dataclass
class LiraConfig:
    enabled: bool = True
    n_shadows: int = 8
    shadow_fraction: float = 0.5  # of the non-target pool, capped at the target's training size
    fixed_variance: bool = True
    C: float = 1.0  # inverse L2 strength of the shadow logistic regressions


@dataclass
class CentroidConfig:
    enabled: bool = True
    min_cluster_size: int = 10


@dataclass
class ReferenceConfig:
    enabled: bool = False
    n_estimators: int = 100
    n_jobs: int = 1


@dataclass
class SmallTrainConfig:
    enabled: bool = False
    size: int = 100
    repeats: int = 10


@dataclass
class FederatedLeakageConfig:
    enabled: bool = True
    simulation: bool = False
    sim_clients: int = 50
    sim_rounds: int = 3
    sim_lr: float = 0.1


@dataclass
class HELeakageConfig:
    enabled: bool | None = None  # null: only for method=he
    n_ciphertexts: int = 200
    poly_modulus_degree: int = 4096
    coeff_mod_bit_sizes: list[int] = field(default_factory=lambda: [40, 20, 40])
    global_scale_bits: int = 20
    control: bool = True


@dataclass
class LeakageConfig:
    """Schema of the ``leakage:`` config group (conf/leakage/default.yaml documents each key)."""

    enabled: bool = True
    max_per_side: int | None = None
    alpha: float = 0.05
    delta: float = 0.0
    roc_points: int = 60
    lira: LiraConfig = field(default_factory=LiraConfig)
    centroids: CentroidConfig = field(default_factory=CentroidConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    small_train: SmallTrainConfig = field(default_factory=SmallTrainConfig)
    federated: FederatedLeakageConfig = field(default_factory=FederatedLeakageConfig)
    he: HELeakageConfig = field(default_factory=HELeakageConfig)


@dataclass
class TargetingConfig:
    """Schema of the ``targeting:`` block of conf/config.yaml: how a campaign uses a score."""

    shares: list[float] = field(default_factory=lambda: [0.05, 0.10, 0.20])
    cost_per_call: float = 5.0
    value_per_subscription: float = 50.0
    gains_points: int = 51


@dataclass
class NetworkConfig:
    """Schema of the ``network:`` config group (conf/network/*.yaml): the link between the parties.
    ``bandwidth_mbit: null`` is an unshaped link (loopback)."""

    name: str = "loopback"
    bandwidth_mbit: float | None = None
    rtt_ms: float = 0.0


@dataclass
class Config:
    """Schema of ``conf/config.yaml``: one job. ``method`` is typed by its group file's schema."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    method: Any = None
    leakage: LeakageConfig = field(default_factory=LeakageConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    targeting: TargetingConfig = field(default_factory=TargetingConfig)
    k: int = 4
    seed: int = 0
    split_seed: int = 0
    threshold: float = 0.5
    silhouette_sample: int | None = 2000
    resume: bool = True
    results_dir: str = "results"
    per_method: dict[str, Any] = field(default_factory=dict)
    per_dataset: dict[str, Any] = field(default_factory=dict)


def register() -> None:
    """The schemas in Hydra's ConfigStore, under the names the YAML files' ``defaults`` use."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="dataset", name="dataset_schema", node=DatasetConfig)
    cs.store(group="leakage", name="leakage_schema", node=LeakageConfig)
    cs.store(group="network", name="network_schema", node=NetworkConfig)
    for name, schema in METHOD_SCHEMAS.items():
        cs.store(group="method", name=f"{name}_schema", node=schema)


register()


# -- checks ------------------------------------------------------------------------------------

def conform(schema: type, values, where: str, what: str | None = None, complete: bool = True) -> DictConfig:
    """``values`` merged onto ``schema``: an unknown key, a wrong type or (``complete``) a value left
    missing is a :class:`ConfigError` naming ``<where>.<key>``."""
    base = OmegaConf.structured(schema)
    try:
        merged = OmegaConf.merge(base, values if values is not None else {})
    except OmegaConfBaseException as exc:
        inner = getattr(exc, "full_key", None) or ""
        key = ".".join(p for p in (where, inner) if p)
        if isinstance(exc, ConfigKeyError):
            parent = inner.rpartition(".")[0]
            node = OmegaConf.select(base, parent) if parent else base
            known = sorted(node.keys()) if isinstance(node, DictConfig) else []
            raise ConfigError(f"{key} is not {what or 'a setting'}; expected one of {known}") from None
        raise ConfigError(f"{key}: {str(exc).splitlines()[0]}") from None
    missing = sorted(OmegaConf.missing_keys(merged)) if complete else []
    if missing:
        raise ConfigError(f"{'.'.join(p for p in (where, missing[0]) if p)} is missing; give it a value")
    return merged


__all__ = ["SEED_MAX", "Config", "ConfigError", "DatasetConfig", "LeakageConfig", "METHOD_SCHEMAS",
           "NetworkConfig", "TargetSpec", "TargetingConfig", "conform", "register"]
