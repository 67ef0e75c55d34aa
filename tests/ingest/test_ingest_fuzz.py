"""The figure issue #20 asks for: a 32,000-record hostile CSV (12,000 bad records of 59 kinds mixed
with 20,000 good rows of 12 shapes, blank lines and CRLF): every good row stored with its exact values
and physical line, every bad record quarantined with its reason, 0 lost. (benchmarks/ingest_fuzz.py
prints the same figures for a bigger log.)"""

from pipeline.ingest import csv_reader
from pipeline.ingest.ingest import run_ingest
from pipeline.store import Store
from tests.ingest.fuzz_log import COLUMNS, figures, write_fuzz_log
from tests.ingest.stores import ingest_config


def test_fuzzed_log_loses_nothing_and_keeps_exact_values_and_lines(tmp_path, monkeypatch):
    # Small blocks: clean runs take pyarrow's fast path, mixed ones the line-by-line re-scan.
    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", 1 << 13)
    log = write_fuzz_log(tmp_path / "fuzz.csv")
    cfg = ingest_config(tmp_path, COLUMNS, returns="quarantine")
    summary = run_ingest(cfg, log.path)
    got = figures(log, summary, Store(cfg.store))
    assert got["records"] >= 30_000 and got["bad"] >= 10_000 and got["bad_kinds"] >= 50
    assert (got["rows_in"], got["accepted"], got["quarantined"], got["lost"]) == (log.records, got["good"], got["bad"], 0)
    assert summary["rows_duplicate"] == summary["rows_filtered"] == summary["rows_dropped"] == 0
    assert got["good_not_stored_on_its_line"] == got["stored_not_good"] == got["good_with_wrong_values"] == 0
    assert (got["bad_without_expected_reason"], got["wrong_reason_kinds"]) == (0, [])
