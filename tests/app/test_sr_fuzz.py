"""Fuzz the SR reader: whatever an archive hands over, only the app's own errors come out.

Seeds are real SRs: ours (app.results.sr_writer), highdicom-built ones of other
vendors' shapes, dcmqi's tid1500writer output, and read-only templates. Two kinds
of mutation:

- structural, on the pydicom dataset: drop / duplicate / reorder / empty sequence
  items, delete elements, values of the wrong type or VR, absurd numbers (NaN,
  infinity, 1e999, huge integers), huge coordinate lists, deep nesting and cycles,
  missing or hollow code sequences, wrong value and relationship types; the result
  is also written to bytes and read back where pydicom can write it;
- byte level, on the Part 10 bytes: flipped, overwritten, inserted, deleted,
  duplicated and truncated bytes, and absurd element lengths.

Properties: ``read_ai_result`` never raises and never hits its "unexpected error"
branch (which would hide a reader bug); ``read_ai_result_bytes`` raises nothing but
``CompanionError``; what comes back is sane (finite coordinates, certainty in 0..1,
JSON-able); each input takes under a second (hypothesis ``deadline``).

CI runs a small, derandomized profile (``FUZZ_EXAMPLES`` examples per test, 200 by
default). A long, random run: ``FUZZ_EXAMPLES=20000 pytest tests/app/test_sr_fuzz.py -s``
(it prints the number of inputs and the slowest read).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import highdicom as hd
import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes as pcodes
from pydicom.tag import BaseTag

from app.domain import AIResult, Measurement, Urgency
from app.errors import CompanionError
from app.results import codes, sr_reader
from app.results.sr_reader import read_ai_result, read_ai_result_bytes
from tests.support import dicom_data
from tests.support import other_writers as ow

# pydicom warns about every invalid value it meets; here that is the point.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

T = TypeVar("T")
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
LONG_RUN = "FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=1000,  # ms: no input may take a second
    derandomize=not LONG_RUN,  # CI: the same inputs every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


# -- seeds ----------------------------------------------------------------------------------
@cache
def seeds() -> tuple[tuple[str, bytes], ...]:
    """(name, Part 10 bytes) of real SRs from four writers."""
    series = ow.ct_series(3, tag="fuzz")
    image = series[1]
    ours = dicom_data.sr(
        "fuzz",
        measurements=(Measurement(codes.DIAMETER, 12.5, codes.MILLIMETER),),
    )
    region = hd.sr.ImageRegion(
        graphic_type="POLYLINE",
        graphic_data=np.array([[10.0, 10.0], [40.0, 10.0], [40.0, 30.0], [10.0, 10.0]]),
        source_image=ow.source_image(image, [1]),
    )
    region3d = hd.sr.ImageRegion3D(
        graphic_type="POLYGON",
        graphic_data=np.array(
            [[0.0, 0.0, -70.0], [9.0, 0.0, -70.0], [9.0, 9.0, -70.0], [0.0, 0.0, -70.0]]
        ),
        frame_of_reference_uid=image.FrameOfReferenceUID,
    )
    certainty = hd.sr.CodedConcept("111012", "DCM", "Certainty of Finding")
    measurements = [
        ow.measurement(certainty, 87.0, hd.sr.CodedConcept("%", "UCUM", "%")),
        ow.measurement(ow.ATTENUATION, 40.0, ow.HU, derivation=ow.MEAN),
    ]
    urgency = [hd.sr.QualitativeEvaluation(ow.URGENCY, ow.CRITICAL)]
    vendor = ow.report(
        [
            ow.planar_group(
                "2d", region, finding_sites=[hd.sr.FindingSite(ow.LUNG)], measurements=measurements
            ),
            ow.planar_group("3d", region3d, qualitative_evaluations=urgency),
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=ow.tracking("none"),
                finding_type=ow.LESION,
                measurements=[
                    ow.measurement(pcodes.SCT.Volume, 2.5, hd.sr.CodedConcept("ml", "UCUM", "ml"))
                ],
            ),
        ],
        series,
        library=True,
        tag="fuzz-vendor",
    )
    found = [
        ("ours", ow.to_bytes(ours)),
        ("highdicom", ow.to_bytes(vendor)),
        ("enhanced", ow.to_bytes(ow.enhanced_sr(image))),
        ("basic-text", ow.to_bytes(ow.basic_text_sr(image))),
        ("kos", ow.to_bytes(ow.key_object_selection(series[:2]))),
    ]
    if ow.tid1500writer() is not None:  # test_sr_other_writers fails loudly when it is missing
        with tempfile.TemporaryDirectory() as folder:
            sr, _, _ = ow.dcmqi_sr(Path(folder))
            found.append(("dcmqi", ow.to_bytes(sr)))
    return tuple(found)


# -- what every read must satisfy -----------------------------------------------------------
@dataclass
class Stats:
    """Inputs read and the slowest read, printed at the end of the module (pytest -s)."""

    reads: int = 0
    slowest_s: float = 0.0
    unreadable: int = 0
    by_test: dict[str, int] = field(default_factory=dict)


STATS = Stats()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    seeds()  # built here, outside the examples' deadline
    yield
    print(
        f"\nSR fuzz: {STATS.reads} reads {STATS.by_test}, {STATS.unreadable} unreadable, "
        f"slowest {STATS.slowest_s * 1000:.1f} ms"
    )


def _timed(test: str, read: Callable[[], AIResult]) -> AIResult | None:
    start = time.perf_counter()
    try:
        result: AIResult | None = read()
    except CompanionError:
        result = None
    elapsed = time.perf_counter() - start
    STATS.reads += 1
    STATS.by_test[test] = STATS.by_test.get(test, 0) + 1
    STATS.slowest_s = max(STATS.slowest_s, elapsed)
    assert elapsed < 1.0, f"one read took {elapsed:.2f} s"
    if result is not None:
        _check_sane(result)
    if result is None or not result.readable:
        STATS.unreadable += 1
    return result


def _check_sane(result: AIResult) -> None:
    assert isinstance(result, AIResult)
    assert not result.problem.startswith(sr_reader.UNEXPECTED), result.problem
    if not result.readable:
        assert result.problem and result.findings == ()
        return
    for finding in result.findings:
        assert finding.certainty is None or 0.0 <= finding.certainty <= 1.0
        assert isinstance(finding.urgency, Urgency)
        for region in finding.regions:
            assert region.coordinates
            assert all(math.isfinite(v) for p in region.coordinates for v in p)
            assert {len(p) for p in region.coordinates} == {3 if region.is_3d else 2}
            assert region.referenced_frame is None or region.referenced_frame > 0
        assert all(math.isfinite(m.value) for m in finding.measurements)
        finding.to_json()


# -- structural mutations --------------------------------------------------------------------
def _items(ds: Dataset, limit: int = 5000) -> list[Dataset]:
    """ds and every dataset nested in its sequences (breadth first, at most ``limit``)."""
    out = [ds]
    i = 0
    while i < len(out) and len(out) < limit:
        for elem in _sq_elements(out[i]):
            out.extend(x for x in elem.value if isinstance(x, Dataset))
        i += 1
    return out[:limit]


def _sq_elements(ds: Dataset) -> list[DataElement]:
    """Its sequence elements (parsed here: pydicom parses sequences when first accessed)."""
    out = []
    for raw in list(ds.elements()):
        if raw.VR != "SQ":
            continue
        try:
            elem = ds[raw.tag]
        except Exception:  # noqa: BLE001, S112 - bytes a mutation broke: not a sequence
            continue
        if isinstance(elem.value, list | Sequence):
            out.append(elem)
    return out


def _sequences(items: list[Dataset]) -> list[tuple[Dataset, int]]:
    return [(d, e.tag) for d in items for e in _sq_elements(d)]


SR_KEYWORDS = [
    "ContentSequence", "ConceptNameCodeSequence", "ConceptCodeSequence", "ValueType",
    "RelationshipType", "MeasuredValueSequence", "NumericValue", "MeasurementUnitsCodeSequence",
    "GraphicData", "GraphicType", "ReferencedSOPSequence", "ReferencedFrameNumber",
    "ReferencedFrameOfReferenceUID", "TextValue", "UID", "CodeValue", "CodingSchemeDesignator",
    "CodeMeaning", "ContentTemplateSequence", "TemplateIdentifier", "SOPInstanceUID",
    "ContentDate", "ContentTime", "Manufacturer", "SoftwareVersions", "ManufacturerModelName",
]  # fmt: skip
VRS = [
    "AE",
    "CS",
    "DS",
    "FD",
    "FL",
    "IS",
    "LO",
    "OB",
    "SH",
    "SL",
    "SQ",
    "SS",
    "UI",
    "UL",
    "UN",
    "US",
    "UT",
]
ABSURD = [
    "nan", "NaN", "inf", "-inf", "1e999", "-1e308", "1e-320", "0", "-0", "-1",
    "99999999999999999999", "", " ", "abc", "1\\2", "\x00", "+", "1e", "١٢",
]  # fmt: skip
junk = st.one_of(
    st.none(),
    st.text(max_size=24),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=24),
    st.sampled_from(ABSURD),
    st.lists(
        st.one_of(st.integers(), st.floats(), st.text(max_size=4), st.sampled_from(ABSURD)),
        max_size=6,
    ),
    st.builds(Dataset),
    st.builds(lambda: [Dataset()]),
)


def _raw(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, list):
        return b"\\".join(_raw(v) for v in value)
    if isinstance(value, Dataset) or value is None:
        return b""
    return str(value).encode("utf-8", "surrogatepass")


def _element(tag: int, vr: str, value: Any) -> RawDataElement:
    """``value`` as the bytes a file would hold, under ``vr``: pydicom converts it when read."""
    data = _raw(value)
    if len(data) % 2:
        data += b" "
    return RawDataElement(BaseTag(tag), vr, len(data), data, 0, False, True)


def _pick(data: st.DataObject, options: list[T], label: str) -> T:
    """One of ``options``, drawn as an index: hypothesis then reports a number, not a
    pretty-printed dataset (which, for a deep tree, takes longer than the test)."""
    return options[data.draw(st.integers(0, len(options) - 1), label=f"{label} index")]


def _seed(data: st.DataObject) -> bytes:
    names = [name for name, _ in seeds()]
    return dict(seeds())[data.draw(st.sampled_from(names), label="seed")]


def _mutate(data: st.DataObject, ds: Dataset) -> bool:
    """Apply one drawn mutation to ``ds``; True when it made a cycle (ds cannot be written).

    A mutation pydicom itself refuses (converting a value an earlier one broke) is skipped.
    """
    try:
        return _apply(data, ds)
    except Exception:  # noqa: BLE001 - the harness, not the reader, failed
        return False


def _apply(data: st.DataObject, ds: Dataset) -> bool:
    items = _items(ds)
    item = _pick(data, items, "item")
    op = data.draw(
        st.sampled_from(
            ["drop", "duplicate", "reorder", "empty", "delete", "junk", "retype", "absurd",
             "huge", "nest", "cycle", "codes", "value_type"]
        ),
        label="op",
    )  # fmt: skip
    seqs = _sequences(items)
    if op in ("drop", "duplicate", "reorder", "empty") and seqs:
        owner, tag = _pick(data, seqs, "sequence")
        seq = owner[tag].value
        if op == "empty" or not seq:
            owner[tag].value = []
        elif op == "drop":
            del seq[data.draw(st.integers(0, len(seq) - 1), label="index")]
        elif op == "duplicate":
            i = data.draw(st.integers(0, len(seq) - 1), label="index")
            twin = (
                seq[i] if data.draw(st.booleans(), label="same object") else copy.deepcopy(seq[i])
            )
            seq.insert(data.draw(st.integers(0, len(seq)), label="at"), twin)
        else:
            order = data.draw(st.permutations(range(len(seq))), label="order")
            owner[tag].value = [seq[k] for k in order]
    elif op == "delete" and len(item):
        tag = data.draw(st.sampled_from(list(item.keys())), label="tag")
        del item[tag]
    elif op in ("junk", "retype"):
        keyword = data.draw(st.sampled_from(SR_KEYWORDS), label="keyword")
        tag = pydicom.datadict.tag_for_keyword(keyword)
        assert tag is not None
        value = data.draw(junk, label="value")
        if op == "junk":  # a wrong Python type behind the right VR (a bad in-memory object)
            elem = DataElement(tag, pydicom.datadict.dictionary_VR(tag), None)
            elem._value = value
            item._dict[BaseTag(tag)] = elem  # past pydicom's own conversion
        else:
            vr = data.draw(st.sampled_from(VRS), label="vr")
            item[tag] = _element(tag, vr, value)
    elif op == "absurd":
        keyword = data.draw(
            st.sampled_from(
                ["NumericValue", "ReferencedFrameNumber", "GraphicData", "TemplateIdentifier"]
            ),
            label="keyword",
        )
        value = data.draw(
            st.one_of(
                st.sampled_from(ABSURD),
                st.lists(st.sampled_from(ABSURD), min_size=1, max_size=5),
                st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=8),
            ),
            label="value",
        )
        tag = pydicom.datadict.tag_for_keyword(keyword)
        assert tag is not None
        target = _pick(data, [i for i in items if "ValueType" in i] or items, "target")
        target[tag] = _element(tag, pydicom.datadict.dictionary_VR(tag), value)
    elif op == "huge":
        count = data.draw(st.sampled_from([0, 1, 3, 5, 10_001, 300_000]), label="count")
        target = _pick(data, items, "target")
        target.ValueType = data.draw(st.sampled_from(["SCOORD", "SCOORD3D"]), label="vt")
        target.GraphicType = "POLYLINE"
        values = np.linspace(0.0, 100.0, count, dtype="<f4").tobytes()  # as a file holds them
        tag = BaseTag(0x00700022)  # GraphicData, FL
        target._dict[tag] = RawDataElement(tag, "FL", len(values), values, 0, False, True)
    elif op == "nest":
        # (pydicom writes by recursion: a few hundred levels take it minutes)
        depth = data.draw(st.sampled_from([2, 10, 63, 64, 65, 150]), label="depth")
        node = item
        for _ in range(depth):
            child = Dataset()
            child.ValueType = "CONTAINER"
            child.RelationshipType = "CONTAINS"
            child.ConceptNameCodeSequence = copy.deepcopy(
                getattr(item, "ConceptNameCodeSequence", None) or [Dataset()]
            )
            node.ContentSequence = [child]
            node = child
    elif op == "cycle":
        item.ContentSequence = [*list(item.get("ContentSequence") or []), item]
        return True
    elif op == "codes":
        keyword = data.draw(
            st.sampled_from(
                ["ConceptNameCodeSequence", "ConceptCodeSequence", "MeasurementUnitsCodeSequence"]
            ),
            label="keyword",
        )
        target = _pick(data, items, "target")
        how = data.draw(st.sampled_from(["delete", "empty", "hollow", "two"]), label="how")
        if how == "delete":
            target.pop(keyword, None)
        elif how == "empty":
            setattr(target, keyword, [])
        elif how == "hollow":
            hollow = Dataset()
            hollow.CodeMeaning = "no value"
            setattr(target, keyword, [hollow])
        else:
            code = Dataset()
            code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "1", "X", "x"
            setattr(target, keyword, [code, Dataset()])
    elif op == "value_type":
        target = _pick(data, items, "target")
        target.ValueType = data.draw(
            st.sampled_from(
                [
                    "CONTAINER",
                    "CODE",
                    "NUM",
                    "TEXT",
                    "SCOORD",
                    "SCOORD3D",
                    "IMAGE",
                    "UIDREF",
                    "",
                    "BOGUS",
                ]
            ),
            label="value type",
        )
        if data.draw(st.booleans(), label="relationship too"):
            target.RelationshipType = data.draw(
                st.sampled_from(
                    ["CONTAINS", "HAS OBS CONTEXT", "HAS CONCEPT MOD", "INFERRED FROM", "?"]
                ),
                label="relationship",
            )
    return False


def _write(ds: Dataset) -> bytes | None:
    """ds as Part 10 bytes, or None where pydicom cannot write what the mutation made.

    pydicom's writer wraps an error at every nesting level in a new one holding the
    formatted traceback of the last (``tag_in_exception``): the text doubles per level,
    and an error 60 levels down takes minutes and gigabytes. The harness turns that off.
    (The reader never calls ``str(ds)``, ``ds.walk`` or ``dcmwrite``, which do this.)
    """
    out = BytesIO()
    try:
        with mock.patch("pydicom.filewriter.tag_in_exception", contextlib.nullcontext):
            pydicom.dcmwrite(out, ds, enforce_file_format=False)
    except Exception:  # noqa: BLE001 - writing mutants is not what is under test
        return None
    return out.getvalue()


@FUZZ
@given(data=st.data())
def test_structural_mutations(data: st.DataObject) -> None:
    raw = _seed(data)
    ds = pydicom.dcmread(BytesIO(raw))
    cyclic = False
    for _ in range(data.draw(st.integers(1, 5), label="mutations")):
        cyclic = _mutate(data, ds) or cyclic
    _timed("dataset", lambda: read_ai_result(ds))
    written = None if cyclic else _write(ds)
    if written is not None:
        _timed("written", lambda: read_ai_result_bytes(written))


# -- byte-level mutations ---------------------------------------------------------------------
def _byte_mutation(data: st.DataObject, raw: bytearray) -> None:
    op = data.draw(
        st.sampled_from(
            ["flip", "overwrite", "insert", "delete", "duplicate", "truncate", "length"]
        ),
        label="byte op",
    )
    n = len(raw)
    at = data.draw(st.integers(0, max(n - 1, 0)), label="at")
    if op == "flip" and n:
        raw[at] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    elif op == "overwrite":
        chunk = data.draw(st.binary(min_size=1, max_size=16), label="chunk")
        raw[at : at + len(chunk)] = chunk
    elif op == "insert":
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=32), label="chunk")
    elif op == "delete":
        del raw[at : at + data.draw(st.integers(1, 64), label="size")]
    elif op == "duplicate":
        size = data.draw(st.integers(1, 256), label="size")
        raw[at:at] = raw[at : at + size]
    elif op == "truncate":
        del raw[at:]
    elif op == "length":  # an element length field (explicit VR little endian: 16 or 32 bit)
        value = data.draw(
            st.sampled_from([0, 1, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, n, n * 2]),
            label="length",
        )
        raw[at : at + 4] = struct.pack("<I", value & 0xFFFFFFFF)


@FUZZ
@given(data=st.data())
def test_byte_mutations(data: st.DataObject) -> None:
    seed = _seed(data)
    raw = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8), label="mutations")):
        _byte_mutation(data, raw)
    _timed("bytes", lambda: read_ai_result_bytes(bytes(raw)))


# -- fixed cases the fuzzer found or that it should always cover -------------------------
def test_seeds_read_as_expected() -> None:
    for name, raw in seeds():
        result = read_ai_result_bytes(raw)
        assert result.readable, (name, result.problem)
        assert bool(result.findings) == (name != "kos"), name


def _nest(group: Dataset, depth: int) -> None:
    node = group
    for _ in range(depth):
        child = Dataset()
        child.ValueType = "CONTAINER"
        child.RelationshipType = "CONTAINS"
        node.ContentSequence = [*list(node.get("ContentSequence") or []), child]
        node = child


@pytest.mark.parametrize("depth", [sr_reader.MAX_DEPTH - 1, sr_reader.MAX_DEPTH + 1, 5000])
def test_deep_trees_are_bounded(depth: int) -> None:
    ds = pydicom.dcmread(BytesIO(dict(seeds())["highdicom"]))
    _nest(ds.ContentSequence[-1].ContentSequence[0], depth)  # below the first group
    start = time.perf_counter()
    result = read_ai_result(ds)
    assert time.perf_counter() - start < 1.0
    if depth < sr_reader.MAX_DEPTH:
        assert result.readable and len(result.findings) == 3
    else:
        assert not result.readable and "nested deeper" in result.problem


def test_deeply_nested_file_is_bounded() -> None:
    """A file nested 300 levels deep (pydicom parses sequences lazily, level by level)."""
    ds = pydicom.dcmread(BytesIO(dict(seeds())["highdicom"]))
    _nest(ds.ContentSequence[-1].ContentSequence[0], 300)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # pydicom's writer recurses per level
    try:
        data = ow.to_bytes(ds)
    finally:
        sys.setrecursionlimit(limit)
    start = time.perf_counter()
    result = read_ai_result_bytes(data)
    assert time.perf_counter() - start < 1.0
    assert not result.readable and "nested deeper" in result.problem


def test_truncated_content_sequence_is_unreadable() -> None:
    """Found by the byte fuzzer: pydicom parses a cut sequence only when the reader gets to it,
    and then raises OSError ("No tag to read") from inside the read."""
    raw = dict(seeds())["enhanced"]
    content = raw.find(b"\x40\x00\x30\xa7")  # (0040,A730) Content Sequence
    cut = 0
    for cut in range(content, len(raw), 37):
        try:
            result = read_ai_result_bytes(raw[:cut])
        except CompanionError:  # cut where dcmread itself notices
            continue
        if "OSError" in result.problem:
            break
    else:
        pytest.fail("no cut of the Content Sequence gave pydicom's OSError")
    assert not result.readable and result.sop_instance_uid
    assert cut < len(raw)


def test_item_count_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sr_reader, "MAX_ITEMS", 10)
    result = read_ai_result_bytes(dict(seeds())["highdicom"])  # its groups hold more
    assert not result.readable and "more than 10 items" in result.problem


def test_cycles_are_bounded() -> None:
    ds = pydicom.dcmread(BytesIO(dict(seeds())["enhanced"]))
    ds.ContentSequence[0].ContentSequence.append(ds.ContentSequence[0])  # an item inside itself
    result = read_ai_result(ds)
    assert not result.readable and "nested deeper" in result.problem


def test_archive_translates_parse_errors(tmp_path: Path) -> None:
    """What the archive layer does with bytes it cannot parse (dicomweb-client's dcmread)."""
    from app.archive.client import open_local

    archive = open_local(tmp_path)
    with pytest.raises(CompanionError):
        archive._call("retrieve instance", lambda: pydicom.dcmread(BytesIO(b"not DICOM at all")))
