"""Any failure of any command is one line on stderr and, with --json, one error object (issue 31, item 4).

Disk full and a read-only store are an ``os`` call that raises OSError(ENOSPC / EROFS) in-process (tests
run as root, where chmod stops no write); the file-size limit is a real one, RLIMIT_FSIZE in a child with
SIGXFSZ ignored, so the write fails with EFBIG. The store is compared byte for byte before and after,
every folder included (ingest's .staging/ aside where a failure is made to strike after the commit
was decided: the next ingest finishes that commit). benchmarks/cli_faults.py puts every command under real faults (a read-only mount,
a full tmpfs, a size limit); tests/core/test_cli_faults.py runs it short.
"""

import errno
import json
import os
import resource
import signal
import subprocess
import sys

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store
from recsys import cli
from recsys.cli import main

pytestmark = pytest.mark.usefixtures("clean_cwd")
FIRST = "ts,item,qty,price\n2024-03-01 10:00:00,A1,2,1.5\n2024-03-02 10:00:00,A1,1,1.5\n"
MORE = "ts,item,qty,price\n" + "".join(f"2024-04-{d:02d} 10:00:00,B{d},{d},2.5\n" for d in range(1, 29))
CONFIG = '[ingest.columns]\nevent_time = "ts"\nitem_id = "item"\nquantity = "qty"\nprice = "price"\n'


@pytest.fixture
def ingested(tmp_path, capsys):
    """A store after one good ingest, and a second export to ingest into it."""
    (tmp_path / "first.csv").write_text(FIRST)
    (tmp_path / "more.csv").write_text(MORE)
    (tmp_path / "c.toml").write_text(CONFIG)
    argv = ["ingest", str(tmp_path / "first.csv"), "--config", str(tmp_path / "c.toml"),
            "--store", str(tmp_path / "s")]
    assert main(argv) == 0
    capsys.readouterr()  # its summary is not the test's output
    return tmp_path


def snapshot(root, staging: bool = True) -> dict[str, bytes | str]:
    """Every path of the store: a file's bytes, a link's target, a folder. ``staging=False`` leaves ingest's
    .staging/ out: a commit decided before a step failed waits there for the next ingest to finish it."""
    return {str(p.relative_to(root)): os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else "dir"
            for p in sorted(root.rglob("*")) if staging or not str(p.relative_to(root)).startswith(".staging/")}


def one_line(capsys, rc: int, code: int = 1) -> tuple[str, dict]:
    """Assert exit ``code``, one stderr line without a traceback, one JSON object on stdout."""
    out = capsys.readouterr()
    assert rc == code and len(out.err.strip().splitlines()) == 1 and "Traceback" not in out.err, out.err
    return out.err.strip(), json.loads(out.out)


def _raise(code: int, filename: str | None = None):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), filename)
    return fail


@pytest.mark.parametrize("function, code, words", [
    ("fsync", errno.ENOSPC, "no space left on the device (ENOSPC)"),
    ("replace", errno.EROFS, "the file system is read-only (EROFS)"),
])
def test_disk_full_and_read_only_store_are_one_line_and_leave_the_store(capsys, monkeypatch, ingested,
                                                                       function, code, words):
    store = ingested / "s"
    before = snapshot(store, staging=False)
    monkeypatch.setattr(os, function, _raise(code, str(store / "raw" / "x") if function == "replace" else None))
    rc = main(["ingest", str(ingested / "more.csv"), "--config", str(ingested / "c.toml"), "--store", str(store),
               "--json"])
    monkeypatch.undo()
    err, error = one_line(capsys, rc)
    assert words in err and str(store) in err and error["stage"] == "ingest" and words in error["error"]
    assert snapshot(store, staging=False) == before


def _file_size_limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # no file may grow: the first byte written fails


def test_a_file_size_limit_is_one_line_and_leaves_the_store(ingested):
    store = ingested / "s"
    before = snapshot(store)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    argv = [sys.executable, "-m", "recsys.cli", "ingest", str(ingested / "more.csv"),
            "--config", str(ingested / "c.toml"), "--store", str(store), "--json"]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, preexec_fn=_file_size_limit,
                         cwd=os.getcwd(), timeout=300)
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr and "EFBIG" in out.stderr and "ulimit -f" in out.stderr
    assert "EFBIG" in json.loads(out.stdout)["error"]
    assert snapshot(store) == before


def test_an_os_error_with_a_message_of_its_own_is_not_blamed_on_the_store():
    """Under a file-size limit (or a full /tmp) TensorFlow's import fails in tempfile.gettempdir(): ENOENT with
    no path and a message of its own. The line gave "no such file or directory (ENOENT) at the store S: check
    the path" (benchmarks/cli_faults.py, `report` on the tiny shop): it now says what failed."""
    exc = FileNotFoundError(errno.ENOENT, "No usable temporary directory found in ['/tmp', '/var/tmp']")
    line = cli.failure_line(exc, store="/data/s")
    assert line.startswith("No usable temporary directory found in ['/tmp', '/var/tmp'] (ENOENT): ")
    assert "the store" not in line and "ulimit -f" in line and "TMPDIR" in line
    missing = cli.failure_line(FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), "/data/s/x.json"))
    assert missing == "no such file or directory (ENOENT) at /data/s/x.json: check the path"  # as before
    arrow = OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")
    assert cli.failure_line(arrow, store="/data/s").startswith("no space left on the device (ENOSPC) at the store")


def test_tensorflows_file_errors_read_as_the_os_error_they_name():
    """TensorFlow's summary writer on a full disk raises its own ResourceExhaustedError, whose message ends in
    the OS's text: the line says ENOSPC and what to do, not "unexpected" with TensorFlow's function names."""
    class ResourceExhaustedError(Exception):
        pass

    exc = ResourceExhaustedError("{{function_node __wrapped__CreateSummaryFileWriter_device_/job:localhost}} "
                                 "/data/s/runs/r/train/events.out.tfevents.1; No space left on device Failed to flush")
    assert cli.failure_line(exc, store="/data/s") == ("no space left on the device (ENOSPC) at the store /data/s: free "
                                                      "some space or give another --store, then run it again "
                                                      "(ResourceExhaustedError)")
    assert "unexpected" in cli.failure_line(ValueError("File not found: model.keras"))


@pytest.fixture
def production(small_config, push_version):
    push_version(small_config, pd.DataFrame({s.SEGMENT: ["a", "b"], s.TREND: [0.5, -0.5]}))
    return Store(small_config.store)


@pytest.mark.parametrize("name, content", [
    ("bad.parquet", b"PAR1 this is not a parquet file PAR1"),
    ("bad.csv", b"user_id,item_id,segment,base_score\n\"u,i1,a,1.0\n\xff\xfe\x00,\"\"\"\n"),
])
def test_a_bad_candidate_file_is_one_line(capsys, production, tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    before = snapshot(production.root)
    rc = main(["rerank", "--candidates", str(tmp_path / name), "--store", str(production.root), "--json"])
    err, error = one_line(capsys, rc)
    assert err.startswith("trendrec rerank: error: ") and error["stage"] == "rerank"
    assert snapshot(production.root) == before


def test_an_unexpected_error_is_one_line_and_its_traceback_only_with_v(capsys, monkeypatch, ingested):
    """A truncated model makes Keras raise ValueError('File not found ...'): the type and message, one line."""
    def truncated(cfg, args):
        raise ValueError("File not found: filepath=models/v0001/forecast/model.keras. Please ensure\n"
                         "the file is an accessible `.keras` zip file.")

    commands = dict(cli.COMMANDS, segments=cli.Command("segments", cli._no_arguments, truncated))
    rc = cli.run_cli(commands, ["segments", "--store", str(ingested / "s"), "--json"])
    err, error = one_line(capsys, rc)
    assert "ValueError: File not found" in err and "run again with -v" in err and "ensure the file" in err
    assert error == {"error": err.split(": error: ", 1)[1], "stage": "segments"}
    rc = cli.run_cli(commands, ["segments", "--store", str(ingested / "s"), "-v"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" in err and err.strip().splitlines()[-1].startswith("trendrec segments: error:")


def test_a_bad_as_of_is_one_line(capsys, ingested):
    rc = main(["candidates", "--as-of", "2011-02-30", "--store", str(ingested / "s"), "--json"])
    err, error = one_line(capsys, rc, code=2)
    assert "--as-of" in err and "YYYY-MM-DD" in error["error"] and error["stage"] == "candidates"



def test_a_failed_write_leaves_no_folder_it_made(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.store import write_parquet

    (tmp_path / "kept").mkdir()
    monkeypatch.setattr(pq, "write_table", _raise(errno.ENOSPC))
    for target in (tmp_path / "new" / "deeper" / "x.parquet", tmp_path / "kept" / "x.parquet"):
        with pytest.raises(OSError):
            write_parquet(pa.table({"a": [1]}), target)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept"]
