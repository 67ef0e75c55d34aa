"""A drop of several files reads each commit's keys and field hashes of a day once, not once per later
file (pipeline.ingest.drop), and still sees what an ingest beside it committed between two files."""

from pathlib import Path

import pyarrow.parquet as pq

from pipeline.ingest import drop as drop_module
from pipeline.ingest.drop import Drop
from pipeline.ingest.ingest import ingest_file, run_ingest
from pipeline.store import Store
from tests.ingest.conftest import HEADER, USER_COLUMNS, ingest_config, write_csv

FILES, DAYS = 6, 4


def _rows(part: int) -> list[str]:
    """Rows of every day; each file repeats the previous file's first row of each day (a repeat across
    files: a second purchase, numbered on)."""
    return [f"2011-03-{day:02d} 10:00:{k:02d},A{max(part + k - 1, 0)},1,2.5,u{day}"
            for day in range(1, DAYS + 1) for k in range(2)]


def test_each_commits_day_files_are_read_once_per_drop(tmp_path, monkeypatch):
    folder = tmp_path / "drop"
    folder.mkdir()
    for part in range(FILES):
        (folder / f"part-{part}.csv").write_text("\n".join([HEADER, *_rows(part)]) + "\n")
    reads: list[Path] = []
    for name in ("_keys", "_u64"):
        real = getattr(drop_module, name)
        monkeypatch.setattr(drop_module, name, lambda path, real=real: reads.append(path) or real(path))
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    summary = run_ingest(cfg, folder)
    assert summary["rows_accepted"] == FILES * DAYS * 2 and summary["rows_duplicate"] == 0
    # each earlier file's keys and hashes per day: once, not once per file after it (60 + 60 lookups)
    assert len(reads) == len(set(reads)) == 2 * DAYS * (FILES - 1)
    # the stored keys are those of one file holding every row: the repeats numbered across the files
    single = ingest_config(tmp_path / "single", USER_COLUMNS)
    one = write_csv(tmp_path, [r for part in range(FILES) for r in _rows(part)], "all.csv")
    assert run_ingest(single, one)["rows_accepted"] == FILES * DAYS * 2
    assert _keys(Store(cfg.store)) == _keys(Store(single.store))


def _keys(store: Store) -> list[int]:
    return sorted(k for f in store.raw_keys.rglob("*.parquet") for k in pq.read_table(f).column(0).to_pylist())


def test_a_drop_sees_a_commit_made_between_its_files(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    store = Store(cfg.store).ensure()
    first = write_csv(tmp_path, _rows(0), "first.csv")
    second = write_csv(tmp_path, _rows(5), "second.csv")
    beside = write_csv(tmp_path, [*_rows(5), "2011-03-09 10:00:00,B1,1,2.5,u1"], "beside.csv")
    drop = Drop(keep=True)
    assert ingest_file(first, cfg, store, drop=drop)["rows_accepted"] == DAYS * 2
    assert run_ingest(cfg, beside)["rows_accepted"] == DAYS * 2 + 1  # committed between the drop's files
    result = ingest_file(second, cfg, store, drop=drop)
    assert (result["rows_accepted"], result["rows_duplicate"]) == (0, DAYS * 2)
