"""A shop engineer's first hour, scripted: their own log, schema, clock and lists, the CLI as the README shows it.

A second shop (not the demo): JSON lines with its own column names, ISO times with +01:00 / +02:00
offsets in Europe/Berlin, guests without a customer id, a category column, a few bad rows; its
trendrec.toml sits in a clean working directory, where the CLI finds it without --config or any
environment variable. Every command of the flow runs as a user types it, then status, models, segments,
rerank of the shop's own lists (`customer, sku, logit`, no segment) and report. Each must exit 0 with no
traceback, and every summary must name the config and the store it used.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from tests.conftest import trendrec_process

CONFIG = """\
store = "shop-data"
source = "events.jsonl"

[ingest]
timezone = "Europe/Berlin"

[ingest.columns]
event_time = "ts"
item_id = "sku"
quantity = "qty"
price = "unit_price"
user_id = "customer"
order_id = "basket"
segment = "category"

[model]
units = 8
epochs = 2
patience = 2
val_days = 28
lookback = 28
horizon = 7
histogram_freq = 0
image_freq = 0

[evaluate]
holdout_days = 7
margin = -1.0  # a 2-epoch model need not beat the baselines: a negative margin blesses it so push happens

[customers]
epochs = 2
units = 8
train_weeks = 3
bless_margin = -1.0

[value]
epochs = 2
units = 8
train_cutoffs = 2
seq_weeks = 8
horizon_days = 28

[rerank.columns]
user_id = "customer"
item_id = "sku"
base_score = "logit"
"""


def _shop_log(path, seed: int = 7) -> None:
    """26 weeks of a small shop: 80 customers with re-buy habits, guests, 4 categories, bad lines."""
    rng = np.random.default_rng(seed)
    items = [f"SKU-{i:03d}" for i in range(40)]
    category = {item: ["tea", "cups", "cakes", "gifts"][i % 4] for i, item in enumerate(items)}
    days = pd.date_range("2024-01-01", periods=26 * 7, freq="D", tz="Europe/Berlin")
    lines = []
    for n, day in enumerate(days):
        for _ in range(rng.poisson(12)):
            who = int(rng.integers(0, 100))
            customer = None if who >= 80 else f"C{who:03d}"  # a fifth are guests
            when = day + pd.Timedelta(hours=int(rng.integers(8, 20)), minutes=int(rng.integers(0, 60)))
            basket = f"B{n:04d}-{len(lines)}"
            for item in rng.choice(items[(who % 10) * 3:(who % 10) * 3 + 8], size=int(rng.integers(1, 4))):
                lines.append({"ts": when.isoformat(), "sku": str(item), "qty": int(rng.integers(1, 4)),
                              "unit_price": round(float(rng.uniform(2, 30)), 2), "customer": customer,
                              "basket": basket, "category": category[str(item)]})
    text = [json.dumps(line) for line in lines]
    text += ['{"ts": "not a time", "sku": "SKU-001", "qty": 1, "unit_price": 3.0, "customer": "C001", '
             '"basket": "X1", "category": "tea"}', '{"ts": "2024-03-01T10:00:00+01:00", "sku": "SKU-00']  # bad rows
    path.write_text("\n".join(text) + "\n")


def _lists(path) -> None:
    rows = [(f"C{c:03d}", f"SKU-{i:03d}", float(10 - k)) for c in range(0, 80, 8) for k, i in enumerate(range(c % 30, c % 30 + 6))]
    rows.append(("C000", "SKU-NEW", 0.5))  # an item the shop never sold
    pd.DataFrame(rows, columns=["customer", "sku", "logit"]).to_csv(path, index=False)


@pytest.mark.slow
def test_a_second_shop_runs_the_whole_flow_from_a_clean_working_directory(tmp_path):
    work = tmp_path / "shop"
    work.mkdir()
    (work / "trendrec.toml").write_text(CONFIG)
    _shop_log(work / "events.jsonl")
    _lists(work / "lists.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRENDREC_")}  # nothing set for them
    commands = [["ingest"], ["aggregate"], ["train"], ["nextbasket"], ["value"], ["evaluate"], ["push"],
                ["rerank", "--candidates", "lists.csv"], ["status"], ["models", "list"], ["segments"],
                ["report"]]
    store = str((work / "shop-data").resolve())
    for argv in commands:
        for json_flag in ([], ["--json"]) if argv[0] in ("ingest", "status", "rerank") else ([],):
            out = trendrec_process(*argv, *json_flag, cwd=work, env=env)
            assert out.returncode == 0, (argv, out.stderr[-2000:])
            assert "Traceback" not in out.stderr and "Traceback" not in out.stdout, (argv, out.stderr[-2000:])
            if json_flag:
                summary = json.loads(out.stdout)
                assert summary["config"] == str((work / "trendrec.toml").resolve()) and summary["store"] == store
            else:
                assert str((work / "trendrec.toml").resolve()) in out.stdout and store in out.stdout, (argv, out.stdout)
    ingested = json.loads(trendrec_process("status", "--json", cwd=work, env=env).stdout)
    assert ingested["rows_quarantined"] == 2 and ingested["production_version"] == "v0001"
    reranked = json.loads(trendrec_process("rerank", "--candidates", "lists.csv", "--json", cwd=work, env=env).stdout)
    assert reranked["rows"] == 61 and reranked["unknown_items"]["count"] == 1
