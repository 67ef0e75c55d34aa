"""The Arrow path for CSV batches (pipeline.ingest.clean) stores what validate_batch would store, value
for value, and gives every other row validate_batch's own reason.

Each batch mixes plain rows with the values validate_batch refuses or rewrites (times around the zones'
transitions and outside the range, numbers beyond their limits, ids with spaces, controls, Unicode
spaces, ".0" floats, over-long ids, missing values), under several configs.
"""

import dataclasses
import datetime

import numpy as np
import pyarrow as pa
import pytest

from pipeline import schemas as s
from pipeline.config import IngestConfig
from pipeline.ingest import clean
from pipeline.ingest.segments import assign_segments
from pipeline.ingest.validate import validate_batch

TODAY = datetime.date(2024, 11, 1)
PLAIN = {"ts": "2023-05-04 10:11:12", "item": "85123A", "qty": "3", "price": "2.55", "cust": "17850",
         "order": "536365", "cat": "Home", "desc": "WHITE HANGING HEART"}
ODD = {
    "ts": ["2024-03-31 01:30:00", "2024-10-27 01:30:00", "2024-03-10 02:30:00", "2024-11-03 01:30:00",
           "0999-12-31 23:00:00", "9999-06-01 00:00:00", "1989-12-31 23:59:59", "1990-01-01 00:00:00",
           "2024-11-02 23:59:59", "2024-11-03 00:00:00", "2030-01-01 00:00:00", "2023-05-04",
           "2023-05-04 10:11:12.123456", "2023-12-31 23:30:00", "2024-01-01 00:30:00", None],
    "qty": ["-2", "0", "-0.0", "1e3", "1e6", "1000001", "nan", "inf", "-inf", "3.5", None, "1e-320"],
    "price": ["-1", "0", "-0.0", "1e7", "10000001", "nan", "inf", None, "0.001"],
    "item": [" 85123A", "85123A ", "  ", "17850.0", "-3.00", "1e20", "a\tb", "x\x7f", "x\u0085y", "\u00a0abc",
             "abc\u3000", "é", "née", "NA", "x" * 40, "ü" * 20, "", None, "1.50", "a b", "\u2028", "'q'"],
    "cust": ["17850.0", " 17850", "", None, "  ", "\u00a0", "c" * 41, "12\x00", "ñ"],
    "order": ["C536365", "536365.0", None, "", " 1", "2 "],
    "cat": [" Home ", "Café", "", None, "  ", "12.0", "Ünïcode", "\t"],
    "desc": ["RED HEART", "retrospot lunch bag", None, "", "CHRISTMAS LIGHTS"],
}
COLUMNS = {"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price", "user_id": "cust",
           "order_id": "order"}


def _batch(rows: int, odd_share: float, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns = {}
    for name, plain in PLAIN.items():
        values = np.full(rows, plain, dtype=object)
        odd = rng.random(rows) < odd_share
        values[odd] = rng.choice(np.array(ODD[name], dtype=object), odd.sum())
        columns[name] = pa.array(values, pa.string())
    return pa.table(columns)


def _config(**change) -> IngestConfig:
    return dataclasses.replace(IngestConfig(columns=dict(COLUMNS), max_id_length=30), **change)


CONFIGS = {
    "london, returns quarantined": _config(timezone="Europe/London"),
    "new york, returns kept, category mapped": _config(timezone="America/New_York", returns="keep",
                                                       columns={**COLUMNS, "segment": "cat"}),
    "lord howe, returns dropped, rules": _config(timezone="Australia/Lord_Howe", returns="drop",
                                                 segment_from="desc", segment_rules=(("hearts", "HEART"),
                                                                                     ("xmas", "CHRISTMAS|XMAS"))),
    "utc, no order, no price": _config(columns={k: v for k, v in COLUMNS.items() if k not in ("order_id", "price")},
                                       price_default=1.5),
}


def _general(table: pa.Table, cfg: IngestConfig):
    frame = table.to_pandas()
    canon, reason = validate_batch(frame, cfg, TODAY)
    canon[s.SEGMENT] = assign_segments(frame, cfg)
    return canon, reason


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("odd_share", [0.0, 0.02, 0.3])
def test_arrow_path_stores_and_refuses_what_validate_batch_does(name, odd_share):
    cfg = CONFIGS[name]
    for seed in range(3):
        table = _batch(3000, odd_share, seed)
        judged = clean.judge(table, cfg, TODAY)
        assert judged is not None
        canon, reason = _general(table, cfg)
        ok = (reason == "").to_numpy()
        assert np.array_equal(judged.ok, ok)
        expected = pa.Table.from_pandas(canon[ok], schema=clean.CANONICAL, preserve_index=False)
        assert judged.good.equals(expected), name
        assert judged.reason.tolist() == reason.iloc[judged.rest].tolist()
        judged_rows = np.zeros(len(ok), dtype=bool)
        judged_rows[judged.rest] = True
        assert ok[~judged_rows].all()  # a row the Arrow path keeps is one validate_batch keeps
        if odd_share == 0.0:
            assert len(judged.rest) == 0  # plain rows never need the general path
        else:
            assert 0 < len(judged.rest) < len(ok)


def test_a_column_that_does_not_cast_sends_the_batch_to_validate_batch():
    cfg = CONFIGS["london, returns quarantined"]
    for column, value in (("ts", "2023-05-04T10:11:12+02:00"), ("ts", "1683195072"), ("qty", "three"),
                          ("price", " 2")):
        table = _batch(50, 0.0, 0)
        values = table.column(column).to_pylist()
        values[7] = value
        table = table.set_column(table.schema.get_field_index(column), column, pa.array(values, pa.string()))
        assert clean.judge(table, cfg, TODAY) is None, (column, value)


def test_configs_the_arrow_path_leaves_to_validate_batch():
    assert clean.covers(_config())
    for change in ({"event_type_column": "kind", "event_types": ("buy",)}, {"time_column": "t"},
                   {"timestamp_format": "%d/%m/%Y %H:%M"}, {"timestamp_unit": "s"}):
        assert not clean.covers(_config(**change)), change
        assert clean.judge(_batch(10, 0.0, 0), _config(**change), TODAY) is None


def test_printable_tells_id_columns_with_nothing_at_their_edges():
    """ids.printable (the shortcut that skips reading each id's edge bytes) is true only when every byte
    lies in 0x21-0x7E: one space, control, DEL or non-ASCII byte anywhere sends the column the long way."""
    from pipeline.ingest import ids
    assert ids.printable(pa.array(["85123A", "~!", None, ""]))
    assert ids.printable(pa.array([], pa.string()))
    for odd in (" ", "\x20a", "a b", "\x1f", "\x7f", "é", "\u00a0", "\x00"):
        assert not ids.printable(pa.array(["85123A", "x" + odd + "y"])), repr(odd)
        assert not ids.printable(pa.array([odd])), repr(odd)
    sliced = pa.array(["a b", "plain", "c\td"]).slice(1, 1)  # only the slice's own bytes count
    assert ids.printable(sliced)
    assert list(ids.byte_lengths(pa.array(["ab", None, "", "é"]))) == [2, 0, 0, 2]
