"""Idempotency across files (event keys), and a property test: garbage mixed into valid rows is
never lost — every row is stored, quarantined, or counted as a duplicate."""

import csv
import dataclasses
import io
import json
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import schemas as s
from pipeline.config import IngestConfig, load_config
from pipeline.ingest.ingest import COUNTERS, run_ingest
from pipeline.ingest.validate import REASONS
from pipeline.store import Store

COLUMNS = {"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price", "order_id": "order"}
HEADER = "ts,item,qty,price,order"


def _cfg(store: Path, **ingest):
    ingest.setdefault("columns", COLUMNS)
    ingest.setdefault("max_reject_share", 1.0)  # small logs, bad on purpose
    return dataclasses.replace(load_config(None), store=str(store), ingest=IngestConfig(**ingest))


def _stored(cfg) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in Store(cfg.store).committed_raw_files())


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def _row(i: int, order: str = "o1") -> str:
    return f"2024-03-0{1 + i % 3} 10:00:0{i % 10},A{i},1,2.0,{order}"


def test_overlapping_files_add_each_event_once(tmp_path):
    cfg = _cfg(tmp_path / "store")
    first = run_ingest(cfg, _write(tmp_path / "a.csv", [_row(i) for i in range(6)]))
    second = run_ingest(cfg, _write(tmp_path / "b.csv", [_row(i) for i in range(3, 10)]))
    assert (first["rows_accepted"], first["rows_duplicate"]) == (6, 0)
    assert (second["rows_in"], second["rows_accepted"], second["rows_duplicate"]) == (7, 4, 3)
    assert _stored(cfg) == 10
    both = run_ingest(cfg, _write(tmp_path / "c.csv", [_row(i) for i in range(12)]))  # superset
    assert (both["rows_accepted"], both["rows_duplicate"]) == (2, 10) and _stored(cfg) == 12


def test_repeated_identical_rows_are_counted_as_copies(tmp_path):
    """A row repeated twice is two purchases; a later file with three copies adds exactly one."""
    cfg = _cfg(tmp_path / "store")
    assert run_ingest(cfg, _write(tmp_path / "a.csv", [_row(1)] * 2 + [_row(2)]))["rows_accepted"] == 3
    later = run_ingest(cfg, _write(tmp_path / "b.csv", [_row(1)] * 3))
    assert (later["rows_accepted"], later["rows_duplicate"]) == (1, 2)
    assert _stored(cfg) == 4


def test_same_file_twice_and_in_one_run(tmp_path):
    cfg = _cfg(tmp_path / "store")
    a = _write(tmp_path / "a.csv", [_row(i) for i in range(4)] + ["bad,A,1,1,o"])
    copy = tmp_path / "copy"
    copy.mkdir()
    _write(copy / "a1.csv", [_row(i) for i in range(4)])
    run_ingest(cfg, a)
    again = run_ingest(cfg, a)
    assert {k: again[k] for k in COUNTERS} == {"rows_in": 5, "rows_accepted": 0, "rows_quarantined": 1,
                                               "rows_duplicate": 4, "rows_filtered": 0, "rows_dropped": 0}
    assert run_ingest(cfg, copy)["rows_duplicate"] == 4 and _stored(cfg) == 4


def test_event_key_is_configurable(tmp_path):
    """Keyed on order and item only, a corrected price for the same order line is a duplicate."""
    cfg = _cfg(tmp_path / "store", event_key=("order_id", "item_id"))
    run_ingest(cfg, _write(tmp_path / "a.csv", ["2024-03-01 10:00:00,A1,1,2.0,o1"]))
    fix = run_ingest(cfg, _write(tmp_path / "b.csv", ["2024-03-01 10:00:00,A1,1,2.5,o1"]))
    assert (fix["rows_accepted"], fix["rows_duplicate"]) == (0, 1)


_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00\x0b\x0c\x1c\x1d\x1e"
                              "\x85\u2028\u2029"), max_size=12)
_VALID = st.builds(lambda d, h, q, p: {"ts": f"2024-03-{d:02d} {h:02d}:00:00", "item": f"A{h}", "qty": str(q),
                                       "price": str(p), "order": f"o{d}"},
                   st.integers(1, 28), st.integers(0, 23), st.integers(-3, 50), st.sampled_from([0, 1.5, 2, 9.99]))
_GARBLED = st.builds(lambda row, key, junk: {**row, key: junk}, _VALID, st.sampled_from(list(COLUMNS.values())),
                     st.one_of(_TEXT, st.sampled_from(["nan", "inf", "-1e400", "", "1e30", "2024-13-45", "0x10"])))
_LINE = st.one_of(st.tuples(st.just("row"), _VALID), st.tuples(st.just("row"), _GARBLED),
                  st.tuples(st.just("junk"), _TEXT.filter(lambda t: t.strip() != "")))


def _render(records: list, fmt: str) -> str:
    out = io.StringIO()
    if fmt == "csv":
        out.write(HEADER + "\n")
    writer = csv.writer(out, lineterminator="\n")
    for kind, value in records:
        if kind == "junk":
            out.write(value + "\n")
        elif fmt == "csv":
            writer.writerow([value[c] for c in HEADER.split(",")])
        else:
            out.write(json.dumps(value) + "\n")
    return out.getvalue()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(_LINE, min_size=1, max_size=40), fmt=st.sampled_from(["csv", "jsonl"]),
       overlap=st.integers(0, 10))
def test_garbage_never_crashes_and_no_row_is_lost(records, fmt, overlap):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = _cfg(tmp / "store", returns="quarantine")
        first = tmp / f"a.{fmt}"
        first.write_text(_render(records, fmt), encoding="utf-8")
        second = tmp / f"b.{fmt}"
        fresh = ("row", {"ts": "2024-04-01 10:00:00", "item": "NEW", "qty": "1", "price": "1", "order": "o"})
        second.write_text(_render(records[-overlap:] + [fresh] if overlap else [fresh], fmt), encoding="utf-8")
        summary = run_ingest(cfg, str(tmp / f"*.{fmt}"))
        assert summary["rows_in"] == sum(summary[k] for k in COUNTERS[1:])
        lines = [line for line in _render(records, fmt).splitlines()[1 if fmt == "csv" else 0:]
                 if line.strip() != ""]
        assert summary["rows_in"] >= len(lines)  # CSV may split a junk line with quotes, never merge rows
        quarantined = sum(pq.ParquetFile(f).metadata.num_rows for f in Store(cfg.store).quarantine.glob("*.parquet"))
        # refused rows the first file already quarantined are not written twice
        assert (_stored(cfg), quarantined) == (summary["rows_accepted"], summary["quarantine_written"])
        assert summary["rows_quarantined"] == sum(summary["quarantine_reasons"].values())
        bad = pd.concat(pq.read_table(f).to_pandas() for f in Store(cfg.store).quarantine.glob("*.parquet"))
        assert bad[s.REASON].str.split(":").str[0].isin(REASONS).all()


def _drop(folder: Path, parts: list[list[str]]) -> Path:
    folder.mkdir()
    for n, rows in enumerate(parts):
        _write(folder / f"part{n}.csv", rows)
    return folder


def test_a_repeat_split_over_the_files_of_one_drop_counts_as_in_one_file(tmp_path):
    """Two identical lines are two purchases whether they sit in one file or in two files of one drop;
    a later ingest of an overlapping re-export adds nothing."""
    rows = [_row(i) for i in range(6)] + [_row(1)]  # line 1 repeats: a genuine second purchase
    single, split = _cfg(tmp_path / "single"), _cfg(tmp_path / "split")
    assert run_ingest(single, _write(tmp_path / "all.csv", rows))["rows_accepted"] == 7
    drop = _drop(tmp_path / "drop", [rows[:3], rows[3:]])  # the repeat of line 1 lands in the second file
    assert run_ingest(split, drop)["rows_accepted"] == 7 and _stored(split) == _stored(single) == 7
    again = run_ingest(split, _write(tmp_path / "reexport.csv", rows[3:]))  # a re-export, a later ingest
    assert (again["rows_accepted"], again["rows_duplicate"]) == (0, 4) and _stored(split) == 7
    assert run_ingest(split, drop)["rows_accepted"] == 0 and _stored(split) == 7  # the drop again: nothing


def test_a_drop_cut_short_after_its_first_file_numbers_on_from_it_when_run_again(tmp_path, monkeypatch):
    from pipeline.ingest import ingest as ingest_module

    rows = [_row(i) for i in range(6)] + [_row(1), _row(2)]
    cfg = _cfg(tmp_path / "store")
    drop = _drop(tmp_path / "drop", [rows[:4], rows[4:]])
    real, calls = ingest_module._commit_new, []

    def dies_at_the_second(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after the first file was committed
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "_commit_new", dies_at_the_second)
    try:
        run_ingest(cfg, drop)
    except KeyboardInterrupt:
        pass
    assert _stored(cfg) == 4
    monkeypatch.setattr(ingest_module, "_commit_new", real)
    rerun = run_ingest(cfg, drop)  # the first file is skipped unread; its field hashes were kept
    assert rerun["rows_accepted"] == 4 and _stored(cfg) == 8
