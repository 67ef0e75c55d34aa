"""The CSV reader under hostile input (issue #20): a bad record costs only itself, every other row keeps
its physical line, one invalid byte refuses one row, a duplicated header name fails in one line."""

import io
import random

import pytest

from pipeline import schemas as s
from pipeline.ingest import csv_reader
from pipeline.ingest.ingest import IngestError, run_ingest
from tests.ingest.conftest import HEADER, USER_COLUMNS, ingest_config, quarantined, stored, write_csv


def _cfg(tmp_path, **ingest):
    return ingest_config(tmp_path, USER_COLUMNS, **ingest)


def test_an_unbalanced_quote_costs_its_own_line_only(tmp_path):
    rows = ["2011-03-04 10:00:00,A1,1,1,u1", '2011-03-04 10:00:00,"WHITE HEART,6,2,u2',
            "2011-03-04 10:00:01,A2,2,1,u3", 'x,"y', "2011-03-04 10:00:02,A3,3,1,u4"]
    cfg = _cfg(tmp_path)
    summary = run_ingest(cfg, write_csv(tmp_path, rows))
    assert (summary["rows_in"], summary["rows_accepted"], summary["rows_quarantined"]) == (5, 3, 2)
    raw = stored(cfg)
    assert raw[s.ITEM_ID].tolist() == ["A1", "A2", "A3"] and raw[s.QUANTITY].tolist() == [1, 2, 3]
    assert raw[s.SOURCE_LINE].tolist() == [2, 4, 6]
    bad = quarantined(cfg)
    assert bad[s.SOURCE_LINE].tolist() == [3, 5]
    assert bad[s.REASON].str.startswith("malformed_row: unbalanced quote").all()
    assert bad[s.RAW_ROW].iloc[0] == '2011-03-04 10:00:00,"WHITE HEART,6,2,u2'


def test_an_unbalanced_quote_on_the_last_line_is_refused_too(tmp_path):
    cfg = _cfg(tmp_path)
    summary = run_ingest(cfg, write_csv(tmp_path, ["2011-03-04 10:00:00,A1,1,1,u1", '2011-03-04 10:00:00,A2,1,1,"u2']))
    assert (summary["rows_accepted"], summary["quarantine_reasons"]) == (1, {"malformed_row": 1})


def test_values_spanning_lines_keep_every_later_row_on_its_physical_line(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text(HEADER + ',desc\n2011-03-04 10:00:00,A1,1,1,u,"two\nlines"\n2011-03-04 10:00:01,A2,2,1,u,\n'
                    '2011-03-04 10:00:02,A3,3,1,u,"three\n\nlines"\n2011-03-04 10:00:03,A4,4,1,u,one\n')
    cfg = _cfg(tmp_path, csv_newlines_in_values=True)
    run_ingest(cfg, path)
    raw = stored(cfg)
    assert raw[s.ITEM_ID].tolist() == ["A1", "A2", "A3", "A4"]
    assert raw[s.SOURCE_LINE].tolist() == [2, 4, 5, 8]  # the line each record starts on


def test_line_numbers_stay_physical_across_blank_lines_and_crlf(tmp_path):
    path = tmp_path / "e.csv"
    path.write_bytes(b"ts,item,qty,price,cust\r\n2011-03-04,A1,1,1,u\r\n\r\n2011-03-04,A2,1,1,u\r\nbad\r\n"
                     b"2011-03-04,A3,1,1,u\r\n")
    cfg = _cfg(tmp_path)
    run_ingest(cfg, path)
    assert stored(cfg)[s.SOURCE_LINE].tolist() == [2, 4, 6]
    assert quarantined(cfg)[s.SOURCE_LINE].tolist() == [5]


def test_one_invalid_utf8_byte_costs_one_row_and_keeps_its_bytes(tmp_path):
    path = tmp_path / "e.csv"
    good = [b"2011-03-04 10:00:0%d,A%d,1,1,u" % (i, i) for i in range(5)]
    path.write_bytes(b"\n".join([HEADER.encode(), *good[:2], b"2011-03-04 10:00:09,A\xff9,1,1,u", *good[2:]]) + b"\n")
    cfg = _cfg(tmp_path, max_reject_share=0.5)
    summary = run_ingest(cfg, path)
    assert (summary["rows_accepted"], summary["quarantine_reasons"]) == (5, {"bad_encoding": 1})
    bad = quarantined(cfg)
    assert bad[s.SOURCE_LINE].tolist() == [4] and bad[s.RAW_ROW].iloc[0] == "2011-03-04 10:00:09,A\\xff9,1,1,u"
    assert stored(cfg)[s.SOURCE_LINE].tolist() == [2, 3, 5, 6, 7]


def test_duplicate_header_names_fail_in_one_line(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("ts,item,qty,qty,price,cust\n2011-03-04,A,1,1,1,u\n")
    with pytest.raises(IngestError, match=r"dup\.csv: the header names \['qty'\] more than once"):
        run_ingest(_cfg(tmp_path), path)


def test_blocks_end_on_line_breaks_and_count_every_line_whatever_the_block_size(monkeypatch):
    """The cut between blocks, for LF, CRLF and lone-CR logs and lines longer than a block: blocks put
    back together are the input, each ends on a line break (but the last), line numbers add up."""
    rng = random.Random(5)
    for trial in range(300):
        pieces = [rng.choice([b"a", b"bc", b"x" * rng.randint(0, 40), b"\n", b"\r\n", b"\r", b"\n\n"])
                  for _ in range(rng.randint(0, 60))]
        data = b"".join(pieces)
        monkeypatch.setattr(csv_reader, "BLOCK_BYTES", rng.randint(1, 24))
        blocks = list(csv_reader._whole_lines(io.BytesIO(data[3:]), data[:3], 2))
        assert b"".join(block for block, _, _ in blocks) == data, trial
        for (block, line, count), after in zip(blocks, blocks[1:] + [None]):
            assert count == csv_reader._count_lines(block)
            if after is not None:
                assert block.endswith((b"\n", b"\r")) and not (block.endswith(b"\r") and after[0].startswith(b"\n"))
                assert after[1] == line + count
