"""The checks of a config: each TOML table against its dataclass, then the values against each other.

``pipeline.config.load_config`` builds every section with ``build_section`` and checks the result with
``validate``; a bad value fails with a ``ConfigError`` that names the setting, what was given and what
is allowed. The sections are typed ``Any`` here because this module sits below ``pipeline.config``
(which imports it), so it cannot import the dataclasses it checks.

    python -c "from pipeline.config_checks import validate; from pipeline.config import Config; validate(Config())"
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import re
import zoneinfo
from typing import Any

from pipeline import schemas
from pipeline.distribute import DISTRIBUTE  # allowed model / customers / value .distribute values
from pipeline.errors import ConfigError

CELLS = ("lstm", "gru", "peephole")  # allowed model.cell values


def build_section(cls: type, values: dict[str, Any], where: str) -> Any:
    """``cls`` (a config dataclass) from one TOML table: unknown keys and values of the wrong type are
    refused, naming ``where`` (e.g. ``model.units``); lists become tuples, ints become floats where a
    float is expected."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; expected one of {', '.join(known)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if isinstance(default, tuple):
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{where}.{name}: expected a list, got {value!r}")
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        elif default is None and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)  # an optional number (rerank.weight): unset means "chosen elsewhere"
        elif isinstance(default, bool) or not isinstance(value, type(default)):
            if isinstance(default, float) and isinstance(value, int):
                value = float(value)
            elif type(value) is not type(default):
                raise ConfigError(f"{where}.{name}: expected {type(default).__name__}, got {value!r}")
        kwargs[name] = value
    return cls(**kwargs)


def validate(cfg: Any) -> None:
    """Refuse a ``pipeline.config.Config`` whose values are out of range or contradict each other."""
    cols = cfg.ingest.columns
    unknown = sorted(set(cols) - set(schemas.MAPPABLE_FIELDS))
    if unknown:
        raise ConfigError(f"ingest.columns: unknown field(s) {unknown}; mappable: {list(schemas.MAPPABLE_FIELDS)}")
    _validate_ingest(cfg.ingest)
    for where, value in (("aggregate.top_n", cfg.aggregate.top_n), ("aggregate.threads", cfg.aggregate.threads),
                         ("registry.keep_versions", cfg.registry.keep_versions)):
        if value < 0:
            raise ConfigError(f"{where} must be >= 0, got {value}")
    if cfg.rerank.batch_users < 1:
        raise ConfigError(f"rerank.batch_users must be >= 1, got {cfg.rerank.batch_users}")
    for name in ("weight", "customer_weight"):
        if getattr(cfg.rerank, name) is not None and not 0.0 <= getattr(cfg.rerank, name) <= 1.0:
            raise ConfigError(f"rerank.{name} must be in [0, 1], got {getattr(cfg.rerank, name)}")
    _validate_list_columns(cfg.rerank.columns)
    if cfg.model.target not in schemas.MEASURES:
        raise ConfigError(f"model.target must be one of {schemas.MEASURES}, got {cfg.model.target!r}")
    _validate_model(cfg.model)
    _validate_combination(cfg.combination, cfg.model)
    for where in ("customers", "value"):
        if getattr(cfg, where).distribute not in DISTRIBUTE:
            raise ConfigError(f"{where}.distribute must be one of {', '.join(DISTRIBUTE)}, "
                              f"got {getattr(cfg, where).distribute!r}")


def _validate_list_columns(columns: dict[str, Any]) -> None:
    """[rerank.columns]: trendrec's list fields only, each a column name, no column mapped twice."""
    unknown = sorted(set(columns) - set(schemas.CANDIDATE_COLUMNS))
    if unknown:
        raise ConfigError(f"rerank.columns: unknown field(s) {unknown}; mappable: {list(schemas.CANDIDATE_COLUMNS)}")
    for name, column in columns.items():
        if not isinstance(column, str) or not column.strip():
            raise ConfigError(f"rerank.columns.{name}: expected the name of a column in the shop's lists, "
                              f"got {column!r}")
    twice = sorted({c for c in columns.values() if list(columns.values()).count(c) > 1})
    if twice:
        raise ConfigError(f"rerank.columns: column(s) {twice} mapped to more than one field; map each field "
                          f"to its own column")


def _validate_model(model: Any) -> None:
    for name, allowed in (("cell", CELLS), ("distribute", DISTRIBUTE), ("scaling", ("mean", "naive")),
                          ("loss", ("huber", "mae")), ("base_statistic", ("mean", "median"))):
        if getattr(model, name) not in allowed:
            value = getattr(model, name)
            raise ConfigError(f"model.{name} must be one of {', '.join(allowed)}, got {value!r}")
    if not 0.0 <= model.dropout < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), got {model.dropout}")
    for name in ("lookback", "horizon", "units", "layers", "epochs", "batch_size", "base_seasons", "ensemble"):
        if getattr(model, name) < 1:
            raise ConfigError(f"model.{name} must be >= 1")
    for name in ("histogram_freq", "image_freq", "season_skip", "year_ago_min_share"):
        if getattr(model, name) < 0:
            raise ConfigError(f"model.{name} must be >= 0")
    e = model.level_exponents
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 2.0 for v in e):
        raise ConfigError(f"model.level_exponents must be numbers in [0, 2] (0 keeps the median base, 1 moves it "
                          f"to last week's level), e.g. [0, 0.25, 0.5, 0.75, 1]; [] turns it off; got {list(e)}")
    q = model.quantiles
    valid = all(isinstance(v, float) and 0.0 < v < 1.0 and abs(round(v * 100) - v * 100) < 1e-9 for v in q)
    if q and not (valid and list(q) == sorted(set(q)) and 0.5 in q):
        raise ConfigError(f"model.quantiles must be increasing floats in (0, 1) with at most two decimals "
                          f"and include 0.5 (the median is the point forecast), e.g. [0.1, 0.5, 0.9]; "
                          f"got {list(q)}")


def _validate_combination(comb: Any, model: Any) -> None:
    known = ("lstm", "seasonal_naive", "auto_ets", "auto_theta", "mstl", "year_ago")  # recsys.forecast.members.MEMBERS
    if not comb.members or sorted(set(comb.members) - set(known)):
        raise ConfigError(f"combination.members must be some of {list(known)}, got {list(comb.members)}")
    if comb.rule not in ("best", "pooled", "inverse", "select"):
        raise ConfigError(f"combination.rule must be one of best, pooled, inverse, select, got {comb.rule!r}")
    if not 0 <= comb.min_gain < 1 or comb.statistical_origins < comb.origins:
        raise ConfigError(f"combination.min_gain must be in [0, 1) ({comb.min_gain}) and combination.statistical_origins "
                          f"({comb.statistical_origins}) >= combination.origins ({comb.origins})")
    if not 0 <= comb.power <= 64:
        raise ConfigError(f"combination.power must be in [0, 64] (0: equal weights), got {comb.power}")
    if comb.top_k < 1 or comb.origins < 1:
        raise ConfigError(f"combination.top_k ({comb.top_k}) and combination.origins ({comb.origins}) must be >= 1")
    if comb.origins * model.horizon > model.val_days:
        raise ConfigError(f"combination.origins ({comb.origins}) x model.horizon ({model.horizon}) must be <= "
                          f"model.val_days ({model.val_days}): the LSTM must not have trained on a validation day")


def _validate_ingest(ing: Any) -> None:
    checks = {
        "returns": (ing.returns, ("keep", "drop", "quarantine")),
        "format": (ing.format, ("auto", "csv", "jsonl", "parquet")),
        "timestamp_unit": (ing.timestamp_unit, ("auto", "iso", "s", "ms", "us", "ns")),
    }
    for name, (value, allowed) in checks.items():
        if value not in allowed:
            raise ConfigError(f"ingest.{name} must be one of {', '.join(allowed)}, got {value!r}")
    bad_key = sorted(set(ing.event_key) - set(schemas.MAPPABLE_FIELDS))
    if bad_key or not ing.event_key:
        fields = list(schemas.MAPPABLE_FIELDS)
        raise ConfigError(f"ingest.event_key: unknown or empty {bad_key}; use fields of {fields}")
    if ing.event_types and not ing.event_type_column:
        raise ConfigError("ingest.event_types needs ingest.event_type_column")
    if not ing.csv_header and not ing.csv_column_names:
        raise ConfigError("ingest.csv_header = false needs ingest.csv_column_names")
    if len(ing.csv_delimiter) != 1 or len(ing.csv_quote_char) > 1:
        raise ConfigError("ingest.csv_delimiter must be one character and csv_quote_char at most one")
    if ing.batch_rows < 1:
        raise ConfigError("ingest.batch_rows must be >= 1")
    _validate_timezone(ing.timezone)
    _validate_ingest_bounds(ing)


def _validate_timezone(name: str) -> None:
    """An IANA zone (what zoneinfo knows), "UTC" in any case, or a fixed offset like "+01:00"; else the
    closest known names."""
    if name.upper() == "UTC" or re.fullmatch(r"[+-]\d\d:\d\d", name):
        return
    try:
        zoneinfo.ZoneInfo(name)
        return
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    known = {z.lower(): z for z in zoneinfo.available_timezones()}
    close = [known[z] for z in difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.6)]
    if name.lower() in known:
        close = [known[name.lower()]]
    hint = f"did you mean {' or '.join(repr(z) for z in close)}?" if close else "e.g. \"Europe/Berlin\" or \"UTC\""
    raise ConfigError(f"ingest.timezone: unknown time zone {name!r}; {hint} (IANA names, as zoneinfo knows them)")


def _validate_ingest_bounds(ing: Any) -> None:
    if not 0.0 <= ing.max_reject_share <= 1.0:
        raise ConfigError(f"ingest.max_reject_share must be in [0, 1] (1 = never fail), got {ing.max_reject_share}")
    if ing.max_id_length < 1 or ing.max_future_days < 0:
        raise ConfigError("ingest.max_id_length must be >= 1 and ingest.max_future_days >= 0")
    if not (ing.max_quantity > 0 and ing.max_price > 0):
        raise ConfigError("ingest.max_quantity and ingest.max_price must be > 0")
    try:
        datetime.date.fromisoformat(ing.min_event_date)
    except ValueError:
        raise ConfigError(f"ingest.min_event_date must be a date like 1990-01-01, got {ing.min_event_date!r}") from None
    if ing.timestamp_format and "%" not in ing.timestamp_format:
        raise ConfigError(f"ingest.timestamp_format must be strptime syntax like \"%d/%m/%Y %H:%M\", "
                          f"got {ing.timestamp_format!r}")
