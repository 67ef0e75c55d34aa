"""The statistics counted in the ingest's own pass (pipeline.ingest.tally) against exact counts of what
the commit stored: any row order and batching, the sample, duplicates dropped by the dedup pass."""

import json

import duckdb
import numpy as np
import pytest

from pipeline import schemas as s
from pipeline.ingest import tally as tally_module
from pipeline.ingest.ingest import run_ingest
from pipeline.ingest.stats import ensure_ingest_stats, read_ingest_stats
from pipeline.ingest.tally import hll_estimate
from pipeline.store import Store
from tests.ingest.conftest import ingest_config

COLUMNS = {"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price", "user_id": "cust",
           "order_id": "order", "segment": "seg"}
HEADER = "ts,item,qty,price,cust,order,seg"


def _lines(n: int, seed: int = 0, days: int = 20) -> list[str]:
    """``n`` rows over ``days`` days in time order: orders of 1-4 lines, 10 % guests, 6 segments."""
    rng = np.random.default_rng(seed)
    lines, order = [], 0
    while len(lines) < n:
        order += 1
        minute = int(rng.integers(0, days * 24 * 60))
        day, rest = divmod(minute, 24 * 60)
        cust = "" if rng.random() < 0.1 else f"u{int(rng.zipf(1.5)) % 400}"
        for _ in range(int(rng.integers(1, 5))):
            item = int(rng.zipf(1.3)) % 900
            lines.append((minute, f"2024-03-{1 + day:02d} {rest // 60:02d}:{rest % 60:02d}:00,i{item},"
                                  f"{int(rng.integers(1, 13))},{rng.choice([0.5, 1.25, 2.0, 3.5, 9.99])},{cust},"
                                  f"o{order},seg{item % 6}"))
    return [text for _, text in sorted(lines[:n])]


def _write(tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def _record(cfg) -> dict:
    [record] = read_ingest_stats(Store(cfg.store))
    return {k: v for k, v in record.items() if k not in ("digest", "source")}


def test_any_order_and_batching_gives_the_same_record(tmp_path, monkeypatch):
    monkeypatch.setattr(tally_module, "SAMPLE", 256)  # the bottom-k sample is used, not every row
    lines = _lines(6000)
    records = []
    for k, (order, batch) in enumerate([(lines, 500_000), (lines[::-1], 700),
                                        (list(np.random.default_rng(1).permutation(lines)), 333)]):
        cfg = ingest_config(tmp_path / str(k), COLUMNS, batch_rows=batch)
        run_ingest(cfg, _write(tmp_path, f"log{k}.csv", order))
        records.append(_record(cfg))
    assert records[0] == records[1] == records[2]
    assert records[0]["numeric"][s.PRICE]["sample"] == 256


def test_counts_against_the_stored_rows(tmp_path):
    cfg = ingest_config(tmp_path, COLUMNS, batch_rows=1000)
    run_ingest(cfg, _write(tmp_path, "log.csv", _lines(20000, days=10)))
    record = _record(cfg)
    files = [str(f) for f in Store(cfg.store).committed_raw_files()]
    exact = duckdb.connect().execute(f"""SELECT {s.EVENT_DATE}::VARCHAR, count(*), count(DISTINCT {s.ORDER_ID}),
                                  count(DISTINCT {s.USER_ID}), count(DISTINCT {s.ITEM_ID}), count(DISTINCT {s.SEGMENT}),
                                  1 - count({s.USER_ID}) / count(*)
                           FROM read_parquet({files}) GROUP BY 1 ORDER BY 1""").fetchall()
    assert len(record["days"]) == len(exact) == 10
    for day, (date, rows, orders, customers, items, segments, guests) in zip(record["days"], exact):
        assert (day["date"], day["rows"], day["segments"]) == (date, rows, segments)
        assert day["guest_share"] == pytest.approx(guests)
        for counted, true in ((day["orders"], orders), (day["customers"], customers), (day["items"], items)):
            assert abs(counted - true) <= max(1, 0.03 * true), (date, counted, true)
    price = record["numeric"][s.PRICE]
    mean, std, q50 = duckdb.connect().execute(f"SELECT avg({s.PRICE}), stddev_pop({s.PRICE}), median({s.PRICE}) "
                                f"FROM read_parquet({files})").fetchone()
    assert price["count"] == 20000 and price["sample"] == 20000  # a small commit: every row
    assert (price["mean"], price["std"]) == (pytest.approx(mean), pytest.approx(std))
    assert price["quantiles"]["0.5"] == q50 and sum(price["histogram"]["counts"]) == 20000
    shares = {t["value"]: t["share"] for t in record["categorical"][s.SEGMENT]["top"]}
    exact_shares = dict(duckdb.connect().execute(f"SELECT {s.SEGMENT}, count(*) / 20000 FROM read_parquet({files}) GROUP BY 1").fetchall())
    assert shares == pytest.approx(exact_shares)


def test_a_day_that_lost_duplicates_is_recounted(tmp_path):
    cfg = ingest_config(tmp_path, COLUMNS)
    lines = _lines(3000, days=6)
    first = [t for t in lines if t < "2024-03-04"]
    run_ingest(cfg, _write(tmp_path, "first.csv", first))
    # the second export repeats day 3 in full, half of day 2, and brings days 4-6
    second = [t for t in lines if t >= "2024-03-03"] + [t for t in first if t.startswith("2024-03-02")][::2]
    run_ingest(cfg, _write(tmp_path, "second.csv", second))
    store = Store(cfg.store)
    records = read_ingest_stats(store)
    later = records[1]
    assert [d["date"] for d in later["days"]] == ["2024-03-04", "2024-03-05", "2024-03-06"]  # 2 and 3: all duplicates
    path = store.ingest_stats / f"{later['digest']}.json"
    path.unlink()
    assert ensure_ingest_stats(store, COLUMNS) == [later["digest"]]
    assert json.loads(path.read_text()) == later  # counted from the committed files: the same record


def test_a_partly_duplicated_day_keeps_only_its_new_rows(tmp_path):
    cfg = ingest_config(tmp_path, COLUMNS)
    lines = _lines(2000, days=3)
    day1 = [t for t in lines if t.startswith("2024-03-01")]
    run_ingest(cfg, _write(tmp_path, "first.csv", day1[::2]))
    run_ingest(cfg, _write(tmp_path, "second.csv", day1))  # every other row is new
    store = Store(cfg.store)
    later = read_ingest_stats(store)[1]
    assert [d["rows"] for d in later["days"]] == [len(day1) - len(day1[::2])]
    assert later["numeric"][s.QUANTITY]["count"] == len(day1) - len(day1[::2])
    path = store.ingest_stats / f"{later['digest']}.json"
    path.unlink()
    ensure_ingest_stats(store, COLUMNS)
    assert json.loads(path.read_text()) == later


def test_hyperloglog_is_exact_when_small_and_close_when_large():
    rng = np.random.default_rng(0)
    for n, tolerance in ((1, 0), (37, 1), (5000, 0.03 * 5000), (200_000, 0.04 * 200_000)):
        hashed = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, n, dtype=np.uint64)
        registers = np.zeros(tally_module._M, np.uint8)
        index, rank = tally_module._hll_parts(hashed)
        np.maximum.at(registers, index, rank)
        assert abs(hll_estimate(registers) - n) <= tolerance, n
