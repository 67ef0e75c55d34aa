"""What the monitor tests share: a small synthetic shop, ingested for real, with one fault in its last week.

``make_shop`` draws ten weeks of orders (seeded): 4 segments of 15 items each, 60 customers and 10 %
guests, 12 to 20 orders a day between 09:00 and 17:00 (UTC), prices that belong to their item and
1 to 6 units a line. ``shop_store`` ingests the weeks before ``CUT`` as one file and the week from
``CUT`` as a second file, with ``inject``'s fault in it; ``CUT`` is the reference's end.
``push_release`` makes a production version whose push-time scores were cut off at a given day.

    .venv/bin/python -m pytest tests/monitor -q
"""

import dataclasses
import datetime

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import Config, IngestConfig, load_config
from pipeline.ingest.ingest import run_ingest
from recsys import registry

START = datetime.date(2024, 1, 1)  # a Monday
WEEKS = 10
CUT = START + datetime.timedelta(weeks=WEEKS - 1)  # the last week is the one monitored
SEGMENTS = ("bread", "cakes", "drinks", "snacks")
COLUMNS = (s.EVENT_TIME, s.ORDER_ID, s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.PRICE)


def make_shop(seed: int = 0, weeks: int = WEEKS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    items = [f"{seg[:2]}{k:02d}" for seg in SEGMENTS for k in range(15)]
    segment_of = {item: SEGMENTS[i // 15] for i, item in enumerate(items)}
    price_of = {item: round(float(rng.uniform(1, 9)), 2) for item in items}
    rows, order = [], 0
    for day in range(weeks * 7):
        date = pd.Timestamp(START + datetime.timedelta(days=day), tz="UTC")
        for _ in range(int(rng.integers(12, 21))):
            order += 1
            user = None if rng.random() < 0.1 else f"c{int(rng.integers(60)):03d}"
            time = date + pd.Timedelta(minutes=int(rng.integers(9 * 60, 17 * 60)))
            for item in rng.choice(items, size=int(rng.integers(1, 5)), replace=False):
                rows.append((time, f"o{order:05d}", user, str(item), segment_of[item],
                             float(rng.integers(1, 7)), price_of[item]))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def inject(week: pd.DataFrame, fault: str | None) -> pd.DataFrame:
    """The week with one fault: cents, a day sent twice, a renamed segment, re-keyed items, a zone shift."""
    week = week.copy()
    if fault == "cents":
        week[s.PRICE] = week[s.PRICE] * 100
    elif fault == "day_twice":
        day = week[s.EVENT_TIME].dt.date == CUT + datetime.timedelta(days=2)
        week = pd.concat([week, week[day]], ignore_index=True)
    elif fault == "renamed":
        week[s.SEGMENT] = week[s.SEGMENT].replace({"cakes": "pastry"})
    elif fault == "rekeyed":
        week[s.ITEM_ID] = "sku-" + week[s.ITEM_ID]
    elif fault == "timezone":
        week[s.EVENT_TIME] = week[s.EVENT_TIME] + pd.Timedelta(hours=6)
    elif fault is not None:
        raise ValueError(fault)
    return week


def shop_config(tmp_path) -> Config:
    return dataclasses.replace(load_config(None), store=str(tmp_path / "store"),
                               ingest=IngestConfig(columns={c: c for c in COLUMNS}, max_reject_share=1.0))


def shop_store(tmp_path, fault: str | None = None, seed: int = 0) -> Config:
    """The shop ingested as two files: the weeks before CUT, then the last week with ``fault``."""
    cfg = shop_config(tmp_path)
    events = make_shop(seed)
    before = events[events[s.EVENT_TIME] < pd.Timestamp(CUT, tz="UTC")]
    week = inject(events[events[s.EVENT_TIME] >= pd.Timestamp(CUT, tz="UTC")], fault)
    before.to_parquet(tmp_path / "history.parquet", index=False)
    week.to_parquet(tmp_path / "week.parquet", index=False)
    run_ingest(cfg, str(tmp_path / "history.parquet"))
    run_ingest(cfg, str(tmp_path / "week.parquet"))
    return cfg


def push_release(cfg: Config, cutoff: datetime.date, scores: list[tuple[str, str, float]],
                 segments: tuple[str, ...] = SEGMENTS) -> str:
    """A production version through registry.push: a trend table of ``segments``, placeholder forecaster
    files (never loaded) and push-time scores (user, item, score) cut off at ``cutoff``."""
    from recsys.nextbasket.scores import SCORES_SCHEMA

    def assemble(staging):
        (staging / "forecast").mkdir()
        pd.DataFrame({s.SEGMENT: list(segments), s.TREND: 0.0}).to_parquet(staging / "forecast" / registry.TREND_FILE)
        (staging / "forecast" / "combination.json").write_text("{}")
        (staging / "nextbasket").mkdir()
        frame = pd.DataFrame(scores, columns=[s.USER_ID, s.ITEM_ID, s.SCORE])
        frame = frame.assign(**{c: "" for c in SCORES_SCHEMA.names if c not in frame})[SCORES_SCHEMA.names]
        frame.to_parquet(staging / "nextbasket" / registry.SCORES_FILE)
        return {"parts": {"forecast": {"ships": "run"}, "nextbasket": {"ships": "run", "scores": {"cutoff": str(cutoff)}}}}
    production = registry.read_production(cfg.store)
    return registry.push(cfg, f"models/runs/by-test-{cutoff}", assemble,
                         against=production["version"] if production else None, reason="test")["version"]
