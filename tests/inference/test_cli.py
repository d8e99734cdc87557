"""``companion infer`` on the offline demo archive: JSON findings like ``companion findings``,
results kept local by default, and with --store sent through the outbox and read back."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from app.connect import connect
from app.demo.generate import demo_uid
from app.settings import Settings, data_dir
from app.worklist.service import WorklistService
from inference import cli

STUDY = demo_uid(0, "ct-ich-critical", "study")


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.add_parsers(parser.add_subparsers(dest="command"))
    return cli.run(parser.parse_args(list(argv)))


def test_infer_demo_study_keep_local_then_store(
    capsys: pytest.CaptureFixture[str], memory_keyring: object
) -> None:
    assert _run("infer", STUDY, "--demo", "--json") == 0
    local = json.loads(capsys.readouterr().out)
    assert local and local[0]["finding"]["meaning"] == "Intracranial hemorrhage"
    assert local[0]["urgency"] == "critical"
    assert local[0]["algorithm"]["name"] == "ICH Demo (synthetic)"
    kept = sorted(p.name.split("-")[0] for p in (data_dir() / "ai-results" / STUDY).iterdir())
    assert kept == ["SEG", "SR"]

    assert _run("infer", STUDY, "--demo", "--store", "--json") == 0
    captured = capsys.readouterr()
    stored = json.loads(captured.out)
    assert "sent" in captured.err
    # What `companion findings` reads back from the archive is what infer printed.
    archive = connect(Settings(), demo=True).archive
    results = WorklistService(archive, Settings().weights).results_for(STUDY)
    ours = [r for r in results if r.sop_instance_uid == stored[0]["source_sop_uid"]]
    assert len(ours) == 1
    assert [f.to_json() for f in ours[0].findings] == stored


def test_infer_refuses_a_study_no_model_fits(capsys: pytest.CaptureFixture[str]) -> None:
    from inference.service import StudyNotSuitable

    with pytest.raises(StudyNotSuitable, match="no available model takes DX"):
        _run("infer", demo_uid(0, "dx-pneumothorax", "study"), "--demo", "--json")


def test_models_lists_the_shipped_bundle(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("models", "--json") == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed["ich_demo_ct"]["available"] is True


def test_tiny_training_run_is_deterministic(tmp_path: Path) -> None:
    from inference.models.ich_demo_ct import train

    first = train.train(cases=1, iterations=2, seed=3, batch=1)[0].state_dict()
    again = train.train(cases=1, iterations=2, seed=3, batch=1)[0].state_dict()
    assert all((first[k] == again[k]).all() for k in first)
    net, manifest = train.train(cases=1, iterations=1, seed=4, batch=1)
    train.write_bundle(net, manifest, tmp_path / "tiny")
    from inference.registry import check_bundle, installed_torch_version

    assert check_bundle(
        tmp_path / "tiny", "user", torch_version=installed_torch_version()
    ).available
