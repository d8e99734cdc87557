"""`companion seed-demo --slide-size`: the demo slide and its AI annotations in a real Orthanc."""

from __future__ import annotations

import itertools
import json

import pytest

from app.archive.client import open_dicomweb
from app.archive.slide_pyramid import read_pyramid
from app.demo.slide import level_size
from app.demo.slide_catalog import (
    DEFAULT_SIZE,
    SIZE_ENV,
    configured_size,
    demo_slide_spec,
    level_count,
    parse_size,
)
from app.errors import DemoDataError
from app.results.ann_reader import read_bulk_annotations
from app.results.sr_writer import name_based_uid
from tests.app.test_worklist_orthanc import run_cli
from tests.support.orthanc import OrthancServer


def test_default_slide_is_full_size_without_generating_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIZE_ENV)
    spec = demo_slide_spec(seed=0)
    assert (spec.width, spec.height) == DEFAULT_SIZE
    assert spec.width >= 20_000 and spec.height >= 15_000
    assert spec.levels >= 3
    # each level halves the one above, down to an overview of a few thousand pixels
    sizes = [level_size(spec, k) for k in range(spec.levels)]
    assert sizes[0] == DEFAULT_SIZE and sizes[-1][0] <= 2_560
    assert all(a[0] == 2 * b[0] for a, b in itertools.pairwise(sizes))


def test_slide_size_parsing_and_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_size("4096x3072") == (4096, 3072)
    assert parse_size(" 2048 X 1024 ") == (2048, 1024)
    for bad in ("4096", "axb", "100x100", "-5x300"):
        with pytest.raises(DemoDataError, match="slide size"):
            parse_size(bad)
    monkeypatch.setenv(SIZE_ENV, "3000x2000")
    assert configured_size() == (3000, 2000)
    assert configured_size("1024x1024") == (1024, 1024)  # an explicit size wins
    assert level_count(1024, 768) == 3  # never fewer than three
    assert level_count(20_480, 15_360) == 4
    assert level_count(81_920, 61_440) == 6


@pytest.mark.orthanc
def test_seed_demo_with_slide_size_into_orthanc(empty_orthanc: OrthancServer) -> None:
    url = empty_orthanc.dicomweb_url
    proc = run_cli("seed-demo", url, "--slide-size", "1280x900")
    assert proc.returncode == 0, proc.stderr
    archive = open_dicomweb(url)
    study = name_based_uid("demo-slide-0-study")
    series = {s.modality: s for s in archive.search_series(study)}
    assert set(series) == {"SM", "ANN"}
    pyramid = read_pyramid(archive, study, series["SM"].series_uid)
    assert len(pyramid.levels) >= 3
    assert (pyramid.base.width, pyramid.base.height) == (1280, 900)
    assert [lvl.width for lvl in pyramid.levels] == [1280, 640, 320]
    (ann_ref,) = archive.search_instances(study, modality="ANN")
    ann = read_bulk_annotations(
        archive.retrieve_instance(study, ann_ref.series_uid, ann_ref.sop_uid)
    )
    labels = {g.label for g in ann.groups}
    assert labels == {"Tumor region", "Ki-67 nucleus positive", "Ki-67 nucleus negative"}
    assert set(ann.referenced_sop_uids) & {lvl.sop_uid for lvl in pyramid.levels}
    # the worklist lists the slide study like any other, with its AI result
    proc = run_cli("worklist", "--server", url, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["study_uid"]: r for r in json.loads(proc.stdout)}
    assert rows[study]["modality"] == "SM"
    assert rows[study]["ai_status"] == "done" and rows[study]["findings"] >= 3


def test_seed_demo_bad_slide_size_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = run_cli("seed-demo", str(tmp_path / "x"), "--slide-size", "big")
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and "slide size" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_parallel_generation_makes_the_same_slide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes render and encode the very tiles the serial path does."""
    from app.demo import slide as slide_module

    spec = demo_slide_spec(seed=2, size="1024x768")
    serial = slide_module.generate_slide(spec)
    monkeypatch.setattr(slide_module, "PARALLEL_MIN_TILES", 1)
    monkeypatch.setattr(slide_module.os, "cpu_count", lambda: 2)
    reports: list[tuple[int, int]] = []
    parallel = slide_module.generate_slide(spec, lambda d, t: reports.append((d, t)))
    assert [d.PixelData for d in parallel.levels] == [d.PixelData for d in serial.levels]
    assert reports[0] == (0, 17) and reports[-1] == (17, 17)
