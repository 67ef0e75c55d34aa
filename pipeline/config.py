"""One frozen configuration tree for every stage, loaded from a TOML file.

The file holds the shop's column mapping and the model's defaults; the store directory can be
overridden by ``--store`` or the ``TRENDREC_STORE`` environment variable. ``load_config(path)`` reads the
file it is given (``None``: ``$TRENDREC_CONFIG``, else the built-in defaults); the CLI first looks for
one with ``locate_config`` (``--config``, else a ``trendrec.toml`` in the working directory or a parent,
else ``$TRENDREC_CONFIG``). The config is passed explicitly and saved next to every model.
Every setting and its default is here; the checks of the values are in ``pipeline.config_checks``.

    python -c "from pipeline.config import load_config; print(load_config('trendrec.toml'))"
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import schemas
# ConfigError, CELLS and DISTRIBUTE are re-exported: callers import them from pipeline.config
from pipeline.config_checks import CELLS, DISTRIBUTE, build_section, validate  # noqa: F401
from pipeline.errors import ConfigError

DEFAULT_STORE = "./trendrec-data"
ENV_STORE = "TRENDREC_STORE"
ENV_CONFIG = "TRENDREC_CONFIG"
CONFIG_FILE = "trendrec.toml"  # the file name the CLI looks for in the working directory and its parents
DEFAULTS = "built-in defaults"  # what locate_config names when no file is used


@dataclass(frozen=True)
class IngestConfig:
    format: str = "auto"  # csv | jsonl | parquet | auto (by file suffix; a trailing .gz means gzip)
    columns: dict[str, str] = field(default_factory=dict)  # canonical name -> source column
    timezone: str = "UTC"  # zone of naive timestamps; event_date is the local day
    timestamp_unit: str = "auto"  # auto (ISO text; epochs by digits: ingest.epochs) | iso | s | ms | us | ns
    time_column: str = ""  # set when date and time are separate: columns.event_time is the date
    returns: str = "quarantine"  # quantity < 0: "keep" as negative demand, "drop" (counted) or "quarantine"
    event_type_column: str = ""  # optional column holding the event type (view, cart, purchase...)
    event_types: tuple[str, ...] = ()  # keep only these types; others count as rows_filtered
    quantity_default: float = 1.0  # quantity of every row when columns.quantity is not mapped
    price_default: float = 0.0  # price of every row when columns.price is not mapped
    # canonical fields whose values (plus the occurrence among identical rows) identify an event
    event_key: tuple[str, ...] = ("order_id", "item_id", "event_time", "quantity", "price", "user_id")
    segment_default: str = "all"  # segment when no column or rule gives one
    segment_from: str = ""  # source column the segment rules match against (upper-cased)
    segment_rules: tuple[tuple[str, str], ...] = ()  # ordered (segment, regex); first match wins
    csv_delimiter: str = ","  # CSV field separator
    csv_quote_char: str = '"'  # CSV quote character; "" = no quoting
    csv_header: bool = True  # first CSV line holds the column names
    csv_column_names: tuple[str, ...] = ()  # column names when csv_header is false
    csv_newlines_in_values: bool = False  # quoted values may span lines (line numbers become row numbers)
    batch_rows: int = 400_000  # rows per record batch: bounds memory on large files (ingest peaks at 0.53-0.65 GiB at 400k)
    timestamp_format: str = ""  # strptime format of text times, e.g. "%d/%m/%Y %H:%M"; "" = ISO-8601
    max_reject_share: float = 0.5  # a file with more of its rows quarantined fails (1.0 = never)
    max_id_length: int = 256  # longer item, user or order ids are quarantined (serve refuses them too)
    max_quantity: float = 1e6  # |quantity| above this is quarantined as out_of_range
    max_price: float = 1e7  # unit price above this is quarantined as out_of_range
    min_event_date: str = "1990-01-01"  # events before this day (UTC) are quarantined
    max_future_days: int = 1  # events after the ingest day (UTC) plus this many days are quarantined


@dataclass(frozen=True)
class ModelConfig:
    target: str = schemas.REVENUE  # daily measure the model forecasts
    lookback: int = 84  # days of history per window
    horizon: int = 14  # days forecast per window
    cell: str = "lstm"  # lstm | gru (both fused cuDNN on GPU) | peephole (own cell, generic RNN loop)
    units: int = 64  # recurrent units per layer
    layers: int = 1  # stacked recurrent layers
    dropout: float = 0.2  # dropout between layers (recurrent_dropout stays 0 for cuDNN)
    epochs: int = 40  # upper bound; early stopping usually ends sooner
    batch_size: int = 64  # windows per step
    patience: int = 6  # early-stopping patience in epochs
    learning_rate: float = 2e-3  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    season_skip: int = 7  # forecast = seasonal naive (this period) + learned correction; 0 = off
    base_seasons: int = 6  # the skip's base: mean of the last N seasons' same day (1 = seasonal naive)
    base_statistic: str = "median"  # mean | median of those N same days (median resists one-off spikes)
    closed_days: bool = True  # a weekday with no sales in the whole lookback keeps its base (0) exactly
    # base * (last week / base week) ** e, e per segment picked from these on the validation weeks, e.g.
    # (0.0, 0.25, 0.5, 0.75, 1.0); () = off (the default: measured no better on average, see the README)
    level_exponents: tuple[float, ...] = ()
    scaling: str = "naive"  # per-segment scale: "mean" of the target | "naive" = its seasonal-naive MAE
    loss: str = "mae"  # huber | mae (on the scaled target; mae with scaling "naive" is MASE-like)
    ensemble: int = 1  # members trained with seeds seed, seed+1, ...; their forecasts are averaged
    val_days: int = 42  # last days of the training part used for early stopping
    seed: int = 42  # keras.utils.set_random_seed
    # the LSTM reads each day's value 364 days back (+ a flag that it exists) when at least this share of its
    # training windows has a year back on every day (recsys.forecast.nn.windows); 0 = always, above 1 = never
    year_ago_min_share: float = 0.5
    quantiles: tuple[float, ...] = ()  # e.g. (0.1, 0.5, 0.9), pinball loss, must hold 0.5; () = point only
    distribute: str = "none"  # none | mirrored (tf.distribute.MirroredStrategy over the visible devices)
    histogram_freq: int = 1  # epochs between TensorBoard weight histograms; 0 = none
    image_freq: int = 10  # epochs between forecast-vs-actual images (one more at the end); 0 = none

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> ModelConfig:
        """The config saved with a model: JSON lists back to tuples; keys older files lack keep their default."""
        return cls(**{f.name: tuple(values[f.name]) if isinstance(values[f.name], list) else values[f.name]
                      for f in dataclasses.fields(cls) if f.name in values})


@dataclass(frozen=True)
class CombinationConfig:
    members: tuple[str, ...] = ("lstm", "auto_ets", "auto_theta", "mstl", "year_ago", "seasonal_naive")  # what it may use
    # best: the shop's best member on validation, unless the top_k's combination is better by more than
    # min_gain (recsys.forecast.choice; benchmarks/README.md: within 2 % of the best member on all seven shops) |
    # pooled: the top_k, weights 1 / (mean validation MASE) ** power, one set for the shop | inverse: the
    # same per segment | select: each segment's best
    rule: str = "best"
    top_k: int = 3  # members kept, best validation MASE first (rules "best", "pooled" and "inverse")
    power: float = 8.0  # weights 1 / MASE ** power: 1 = inverse MASE, higher leans on the best member
    origins: int = 3  # validation cut-offs of every member, horizon days apart, inside the model's last val_days
    statistical_origins: int = 8  # validation cut-offs of the statistical members in all (those and earlier ones)
    min_gain: float = 0.01  # rule "best": the combination must beat the best member's validation MASE by this fraction


@dataclass(frozen=True)
class AggregateConfig:
    top_n: int = 0  # keep the N segments with the most events, fold the rest into "__other__"; 0 = all
    memory_limit: str = "1GB"  # DuckDB limit of aggregate, the lists' segment lookup, `trendrec candidates`
    threads: int = 0  # DuckDB threads, and raw batches aggregated side by side; 0 = one per core


@dataclass(frozen=True)
class EvaluateConfig:
    holdout_days: int = 14  # chronological hold-out at the end of the series
    season: int = 7  # seasonal period of the naive baseline and of MASE
    margin: float = 0.0  # a candidate must beat the baseline's MASE by this fraction


@dataclass(frozen=True)
class RerankConfig:
    candidates: str = ""  # the shop's lists: default file of `trendrec rerank`, scored by the next-basket model at push
    columns: dict[str, str] = field(default_factory=dict)  # list field (user_id, item_id, segment, base_score) -> shop's column
    # share of segment trends in the rank blend (recsys.rank.blend); unset: the weight the release chose on its
    # validation week (0 where trends did not help); a number here overrides it (0 = the shop's order)
    weight: float | None = None
    customer_weight: float = 1.0  # share of the customer model's probability for a customer it scored
    max_request_bytes: int = 2_097_152  # `trendrec serve`: larger request bodies get 413
    max_request_candidates: int = 10_000  # `trendrec serve`: longer lists get 413
    header_timeout: float = 10.0  # `trendrec serve`: seconds to send a request's headers, else closed
    body_timeout: float = 30.0  # `trendrec serve`: seconds to send a whole body, else 408
    keep_alive: float = 5.0  # `trendrec serve`: idle seconds before a kept-alive connection is closed
    max_connections: int = 1000  # `trendrec serve`: concurrent connections; requests beyond get 503
    eval_candidates: int = 50  # list length per user in `trendrec evaluate-rerank`
    batch_users: int = 50_000  # `trendrec rerank`: users' lists (and their scores) in memory at a time: bounds memory


@dataclass(frozen=True)
class RegistryConfig:
    keep_versions: int = 10  # newest versions kept after a push (plus production and its history); 0 = all


@dataclass(frozen=True)
class MonitorConfig:
    drift_gate: bool = True  # a failed `trendrec drift` check holds the push back (`push --ignore-drift`: one run)
    trailing_weeks: int = 2  # live weeks in a row behind the best baseline before status and /health say degraded

    def __post_init__(self) -> None:
        if self.trailing_weeks < 1:
            raise ConfigError(f"monitor: trailing_weeks must be 1 or more, got {self.trailing_weeks}")


CUSTOMER_CELLS = ("lstm", "gru")  # both run the fused cuDNN kernel on a GPU with the settings below


@dataclass(frozen=True)
class CustomerModelConfig:
    lookback_weeks: int = 52  # weeks of history read before the cut-off (features and candidates)
    seq_weeks: int = 8  # most recent weeks the recurrent layer reads (the statics cover the lookback)
    batch_customers: int = 20_000  # customers per DuckDB query (hash buckets): bounds memory
    shards: int = 1  # customer stages (push-time scoring, the value forecast) split by a stable hash of the id
    memory_limit: str = "1GB"  # DuckDB memory limit of the customer histories (spills to the store's .tmp/)
    n_candidates: int = 100  # items the model retrieves and scores per customer (recsys.nextbasket.retrieval)
    recent_weeks: int = 4  # window of "recent" popularity and growth (vs the 4 weeks before)
    active_days: int = 28  # a training customer bought in these days before the training cut-off
    train_weeks: int = 8  # weekly training cut-offs before the prediction cut-off (the last validates)
    train_negatives: int = 100  # non-bought retrieved items kept per training customer-week (>= n_candidates: all)
    train_customers: int = 5_000  # training budget: customers sampled per training cut-off (by activity); 0 = all
    validation_customers: int = 10_000  # validation budget: customers of the validation week (early stopping and
    # the judge's baselines, one sample for all), sampled by activity; 0 = all
    judge_customers: int = 50_000  # customers whose events the judge's baselines read: the validated ones, then a
    # sample of the others by activity (TIFU-kNN's neighbours, popularity); 0 = every customer's
    cell: str = "lstm"  # lstm | gru
    units: int = 16  # recurrent units
    dense_units: int = 64  # units of the dense layers after the recurrent one
    dropout: float = 0.2  # dropout between layers (recurrent_dropout stays 0 for cuDNN)
    epochs: int = 8  # upper bound; early stopping usually ends sooner
    batch_size: int = 512  # training pairs per step
    patience: int = 2  # early-stopping patience in epochs
    min_delta: float = 0.0  # early stopping: an epoch counts as better only when the monitor moves by more than this
    monitor: str = "val_recall_at_10"  # early-stopping metric (mode max), or "val_loss"
    learning_rate: float = 3e-3  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    score_batch: int = 16_384  # pairs per predict step when scoring
    top_k: int = 10  # rows per customer returned by the ranking function
    histogram_freq: int = 1  # TensorBoard weight histograms every N epochs; 0 = none
    log_dir: str = ""  # TensorBoard runs go to <log_dir>/customer-model-<cutoff>; "" = the store's runs/ or none
    seed: int = 42  # keras.utils.set_random_seed and negative sampling
    bless_margin: float = 0.0  # push the model only when its validation Recall@10 > best baseline's + margin
    distribute: str = "none"  # none | mirrored (tf.distribute.MirroredStrategy over the machine's GPUs or CPUs)

    def __post_init__(self) -> None:
        if self.cell not in CUSTOMER_CELLS:
            raise ConfigError(f"customers.cell must be one of {CUSTOMER_CELLS}, got {self.cell!r}")
        if not 1 <= self.seq_weeks <= self.lookback_weeks:
            raise ConfigError(f"customers.seq_weeks must be in [1, customers.lookback_weeks], got {self.seq_weeks}")
        if 2 * self.recent_weeks > self.lookback_weeks or self.train_weeks < 2:
            raise ConfigError("customers: need 2 * recent_weeks <= lookback_weeks and train_weeks >= 2")
        if self.train_customers < 0:
            raise ConfigError(f"customers.train_customers must be >= 0 (0 = every customer), got {self.train_customers}")
        if self.judge_customers < 0:
            raise ConfigError(f"customers.judge_customers must be >= 0 (0 = every customer), got {self.judge_customers}")
        if self.validation_customers < 0:
            raise ConfigError("customers.validation_customers must be >= 0 (0 = every customer), "
                              f"got {self.validation_customers}")
        if self.shards < 1:
            raise ConfigError(f"customers.shards must be >= 1, got {self.shards}")
        if not self.min_delta >= 0:
            raise ConfigError(f"customers.min_delta must be >= 0, got {self.min_delta}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> CustomerModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown customer model settings {sorted(unknown)}")
        return cls(**values)


@dataclass(frozen=True)
class ValueConfig:
    horizon_days: int = 90  # days of spend forecast per customer (and the hold-out of `trendrec value --json`)
    seq_weeks: int = 26  # 7-day blocks the LSTM reads before a cut-off (the statics cover all history)
    train_cutoffs: int = 4  # label windows the LSTM and the ridge learn from, the latest ending at the cut-off
    train_step_days: int = 28  # days between those training cut-offs
    units: int = 16  # LSTM units (tanh / sigmoid, recurrent_dropout 0: the fused cuDNN kernel on a GPU)
    dense_units: int = 32  # units of the dense layer after the LSTM and the statics
    dropout: float = 0.2  # dropout between layers
    epochs: int = 40  # upper bound; early stopping usually ends sooner
    batch_size: int = 256  # customers per step
    patience: int = 4  # early-stopping patience in epochs (val_loss)
    learning_rate: float = 3e-3  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    val_share: float = 0.2  # share of training customers held out for early stopping
    train_customers: int = 50_000  # training budget: customers of the LSTM's and ridge's windows (by activity); 0 = all
    fit_customers: int = 100_000  # customers whose days the backtest and the members' fits read (by activity); 0 = all
    seed: int = 42  # keras.utils.set_random_seed and the early-stopping split
    ridge_l2: float = 1.0  # L2 of the RFM ridge (on standardised features, log1p spend target)
    bgnbd_penalizer: float = 0.0  # L2 on BG/NBD and Gamma-Gamma log parameters; 0 = plain maximum likelihood
    batch_customers: int = 50_000  # customers per scoring batch (hash buckets): bounds memory
    memory_limit: str = "2GB"  # DuckDB memory limit of the customer-day queries (spills to the store's .tmp/)
    histogram_freq: int = 0  # TensorBoard weight histograms every N epochs; 0 = none
    distribute: str = "none"  # none | mirrored (tf.distribute.MirroredStrategy over the machine's GPUs or CPUs)

    def __post_init__(self) -> None:
        if self.horizon_days < 7 or self.seq_weeks < 1 or self.train_cutoffs < 1 or self.train_step_days < 1:
            raise ConfigError("value: need horizon_days >= 7, seq_weeks >= 1, train_cutoffs >= 1, train_step_days >= 1")
        if not 0.0 < self.val_share < 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"value: val_share must be in (0, 1) and dropout in [0, 1), got "
                              f"{self.val_share}, {self.dropout}")
        if self.train_customers < 0:
            raise ConfigError(f"value.train_customers must be >= 0 (0 = every customer), got {self.train_customers}")
        if self.fit_customers < 0:
            raise ConfigError(f"value.fit_customers must be >= 0 (0 = every customer), got {self.fit_customers}")


@dataclass(frozen=True)
class Config:
    store: str = DEFAULT_STORE  # root of raw/, quarantine/, aggregates/, models/, runs/, reranked/
    source: str = ""  # default event file for `trendrec ingest`
    ingest: IngestConfig = field(default_factory=IngestConfig)
    aggregate: AggregateConfig = field(default_factory=AggregateConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    combination: CombinationConfig = field(default_factory=CombinationConfig)  # the published forecast's members
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    customers: CustomerModelConfig = field(default_factory=CustomerModelConfig)  # the LSTMRecommender
    value: ValueConfig = field(default_factory=ValueConfig)  # customer value: BG/NBD + GG, LSTM (ZILN), ensemble
    monitor: MonitorConfig = field(default_factory=MonitorConfig)  # what drift and live results do after the push

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy, saved next to every model."""
        return dataclasses.asdict(self)


_SECTIONS = {"ingest": IngestConfig, "aggregate": AggregateConfig, "model": ModelConfig,
             "combination": CombinationConfig, "evaluate": EvaluateConfig, "rerank": RerankConfig, "registry": RegistryConfig,
             "customers": CustomerModelConfig, "value": ValueConfig, "monitor": MonitorConfig}


def load_config(path: str | os.PathLike | None = None, *, store: str | None = None) -> Config:
    """Read the TOML file (or defaults), then apply the store override.

    Precedence for the store: ``store`` argument > ``$TRENDREC_STORE`` > file > default. Relative
    paths in the file (store, source, candidates) are resolved against the file's directory.
    """
    path = path or _env(ENV_CONFIG, "the config file", "the defaults")
    raw: dict[str, Any] = {}
    base = Path.cwd()
    if path:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: invalid TOML: {exc}") from None
        base = p.resolve().parent
    top = {k: v for k, v in raw.items() if k not in _SECTIONS}
    sections = {k: build_section(cls, raw.get(k, {}), k) for k, cls in _SECTIONS.items()}
    cfg = build_section(Config, top, "config")
    cfg = dataclasses.replace(cfg, **sections)
    chosen_store = store or _env(ENV_STORE, "the store directory", "the config's") or cfg.store
    cfg = dataclasses.replace(
        cfg,
        store=str(_resolve(chosen_store, base if chosen_store == cfg.store else Path.cwd())),
        source=str(_resolve(cfg.source, base)) if cfg.source else "",
        rerank=dataclasses.replace(
            cfg.rerank,
            candidates=str(_resolve(cfg.rerank.candidates, base)) if cfg.rerank.candidates else "",
        ),
    )
    validate(cfg)
    return cfg


def locate_config(explicit: str | os.PathLike | None = None,
                  cwd: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """The config file a command reads, and how it was chosen, as tools like ruff find theirs.

    ``explicit`` (``--config``) first; else the nearest ``trendrec.toml`` in ``cwd`` (default: the working
    directory) or a parent; else ``$TRENDREC_CONFIG``; else ``(None, DEFAULTS)``. A set but empty
    ``$TRENDREC_CONFIG`` is refused whichever wins.
    """
    env = _env(ENV_CONFIG, "the config file", "the defaults")
    if explicit:
        return Path(explicit), "--config"
    folder = Path(cwd or Path.cwd()).resolve()
    for parent in (folder, *folder.parents):
        if (parent / CONFIG_FILE).is_file():
            return parent / CONFIG_FILE, "found from the working directory"
    if env:
        return Path(env), f"${ENV_CONFIG}"
    return None, DEFAULTS


def _env(name: str, what: str, unset_means: str) -> str | None:
    """``$name``, or None when unset; set but empty (or blank) it is refused: it would silently mean
    ``unset_means``, like an empty ``--store``."""
    value = os.environ.get(name)
    if value is not None and not value.strip():
        raise ConfigError(f"${name} is set but empty: give {what}, or unset it to use {unset_means}")
    return value


def _resolve(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def load_run_config(config: str = "", store: str = "", horizon: int | None = None) -> Config:
    """The config file with a DAG run's overrides (store directory, forecast horizon) applied."""
    cfg = load_config(config or None, store=store or None)
    if horizon:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, horizon=int(horizon)))
    return cfg
