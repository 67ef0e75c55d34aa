"""The release rule on a store written before parts existed: a run that trained one part pushes, and the
version carries production's other parts from the old layout, which then still serves and rolls back.

The run's next-basket part is a stand-in (a ``Part`` whose assemble writes a score table) so the test needs
no training; the release rule, the registry and the carried parts are the real ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store
from recsys import registry, release, runs
from recsys.rank.rerank import run_rerank
from recsys.runs import TRAIN_FILE, Part, Verdict, seal_verdicts, write_verdict
from tests.report.conftest import build_legacy_version


def _stand_in_nextbasket(blessed: bool) -> Part:
    def assemble(cfg, run, target: Path, verdict: Verdict, production, **_):
        target.mkdir(parents=True)
        pd.DataFrame({s.USER_ID: ["u1", "u1"], s.ITEM_ID: ["i1", "i2"], s.SEGMENT: ["a", "b"],
                      "source": ["past", "past"], s.SCORE: [0.2, 0.9]}).astype({s.SCORE: "float32"}).to_parquet(
            target / registry.SCORES_FILE)
        return {"ships": verdict.ships, "verdict": verdict.to_json()}

    def judge(cfg, run):
        return write_verdict(run.part("nextbasket"), Verdict("nextbasket", blessed, "recall@10", 0.3, "p_topfreq",
                                                             0.2, "stand-in", ships="run" if blessed else "none"))

    return Part("nextbasket", "stand-in next-basket model", (registry.SCORES_FILE,), lambda *a, **k: {}, judge,
                assemble)


@pytest.fixture
def old_store(tiny_store, monkeypatch):
    build_legacy_version(tiny_store)
    parts = release.parts()
    monkeypatch.setattr(release, "parts", lambda: (parts[0], _stand_in_nextbasket(True), parts[2]))
    run = runs.create(Store(tiny_store.store), "only-nextbasket")
    run.part("nextbasket").mkdir()
    (run.part("nextbasket") / TRAIN_FILE).write_text("{}")
    return tiny_store, run


def test_a_run_of_one_part_pushes_onto_a_version_of_the_old_layout(old_store, tmp_path):
    cfg, run = old_store
    store = Store(cfg.store)
    verdicts = release.judge(cfg, run)
    assert list(verdicts) == ["nextbasket"] and verdicts["nextbasket"].against == "v0001"
    result = release.push(cfg, run)
    assert result["pushed"] and result["version"] == "v0002" and result["previous"] == "v0001"
    new = registry.production(store)  # every digest checked
    old = registry.load_release(store, "v0001")
    for name in ("recommender.json", "model.keras", registry.TREND_FILE):  # an LSTM saved before combinations
        assert (new.part("forecast") / name).read_bytes() == (old.path / name).read_bytes(), name
    assert (new.part("value") / "value.json").read_bytes() == (old.path / "customers/value/value.json").read_bytes()
    assert not (new.part("forecast") / "customers").exists()  # the old root's other parts stay out of forecast/
    forecast, value = new.part_metadata("forecast"), new.part_metadata("value")
    assert (forecast["ships"], forecast["holdout_mase"], forecast["carried_from"]) == ("run", 1.1, "v0001")
    assert (value["ships"], value["carried_from"]) == ("ensemble", "v0001")
    assert new.part_metadata("nextbasket")["ships"] == "run" and new.scores_file is not None
    assert new.metadata[registry.TREND_WEIGHT_KEY] == {  # no event log here to choose a trend weight on
        "weight": 0.0, "helped": False,
        "reason": "no event log to choose on or no segment forecaster to take trends from"}
    (tmp_path / "lists.csv").write_text("user_id,item_id,segment,base_score\nu1,i1,a,1.0\nu1,i2,b,0.5\n")
    out = pd.read_parquet(run_rerank(cfg, tmp_path / "lists.csv")["output"])
    assert list(out[s.ITEM_ID]) == ["i2", "i1"] and set(out[s.SIGNAL]) == {"customer_model"}
    assert registry.rollback(store)["version"] == "v0001"  # back to the old layout, which still re-ranks
    assert run_rerank(cfg, tmp_path / "lists.csv")["model_version"] == "v0001"


def test_a_run_judged_against_another_production_is_refused(old_store):
    cfg, run = old_store
    judged = release.judge(cfg, run)
    write_verdict(run.part("nextbasket"), dataclasses.replace(judged["nextbasket"], against=None))
    seal_verdicts(run, list(judged))  # as a whole judge against no production would have
    with pytest.raises(registry.RegistryError, match="judged against production None but production is now v0001"):
        release.push(cfg, run)
    assert registry.read_production(Store(cfg.store))["version"] == "v0001"


def test_nothing_blessed_pushes_nothing(old_store, monkeypatch):
    cfg, run = old_store
    parts = release.parts()
    monkeypatch.setattr(release, "parts", lambda: (parts[0], _stand_in_nextbasket(False), parts[2]))
    release.judge(cfg, run)
    result = release.push(cfg, run)
    assert not result["pushed"] and result["reason"].startswith("no part is blessed")
    assert registry.versions(Store(cfg.store)) == ["v0001"]


def _stand_in_value(fails: bool) -> Part:
    def judge(cfg, run):
        if fails:
            raise OSError("killed between two verdicts")
        return write_verdict(run.part("value"), Verdict("value", False, "spearman", 0.1, "bgnbd", 0.2, "stand-in",
                                                        ships="none"))

    return Part("value", "stand-in value model", (), lambda *a, **k: {}, judge, lambda *a, **k: {})


def test_an_interrupted_judge_is_never_half_of_a_push(old_store, monkeypatch):
    """A judge writes one verdict per part; one killed between two leaves a new verdict beside an earlier one,
    and push then refuses (or reads the last complete set), never the mix (issue 31)."""
    cfg, run = old_store
    forecast = release.parts()[0]
    (run.part("value")).mkdir()
    (run.part("value") / TRAIN_FILE).write_text("{}")
    with pytest.raises(OSError):  # the run's first judge, killed after the next-basket verdict
        monkeypatch.setattr(release, "parts", lambda: (forecast, _stand_in_nextbasket(True), _stand_in_value(True)))
        release.judge(cfg, run)
    assert release.verdicts_of(run) == {}
    assert release.push(cfg, run)["reason"].startswith("no part of this run was judged")

    monkeypatch.setattr(release, "parts", lambda: (forecast, _stand_in_nextbasket(True), _stand_in_value(False)))
    whole = release.judge(cfg, run)
    assert release.verdicts_of(run) == whole and whole["nextbasket"].blessed
    with pytest.raises(OSError):  # judged again, killed between the two parts: nextbasket's verdict changed
        monkeypatch.setattr(release, "parts", lambda: (forecast, _stand_in_nextbasket(False), _stand_in_value(True)))
        release.judge(cfg, run)
    with pytest.raises(runs.RunError, match="nextbasket/verdict.json is not the verdict the last complete judge"):
        release.push(cfg, run)
    assert registry.read_production(Store(cfg.store))["version"] == "v0001"

    monkeypatch.setattr(release, "parts", lambda: (forecast, _stand_in_nextbasket(False), _stand_in_value(False)))
    again = release.judge(cfg, run)
    assert release.verdicts_of(run) == again  # a whole judge: its own set
    assert not release.verdicts_of(run)["nextbasket"].blessed


def test_judging_a_pushed_run_whose_part_was_trained_again_says_to_train_a_new_run(old_store):
    """A pushed run's verdicts are its version's record: once a part is trained again (its verdict gone), a
    judge of the same run refuses and says what helps, a new run, not "judge the run again"."""
    cfg, run = old_store
    release.judge(cfg, run)
    assert release.push(cfg, run)["version"] == "v0002"
    assert release.judge(cfg, run) == release.verdicts_of(run)  # a re-run of the pushed run: the same verdicts
    (run.part("nextbasket") / runs.VERDICT_FILE).unlink()  # what training the part again does
    with pytest.raises(runs.RunError, match=r"only-nextbasket was pushed as v0002: .* train into a new run "
                                            r"\(`trendrec train --run-id NAME`"):
        release.judge(cfg, run)
    assert registry.read_production(Store(cfg.store))["version"] == "v0002"
