"""The reader's code lists (resources/codes/review_code_lists.json) against DICOM PS3.16."""

from __future__ import annotations

import pydicom.sr._concepts_dict as ps3_16

from app.domain import Code
from app.review import code_lists


def _meanings(value: str) -> set[str]:
    """Every meaning PS3.16 (as pydicom ships it) gives SNOMED CT concept ``value``."""
    return {
        meaning.lower()
        for entries in ps3_16.concepts["SCT"].values()
        for code, (meaning, _cids) in entries.items()
        if code == value
    }


def test_every_pathology_code_is_the_concept_ps3_16_names() -> None:
    """The slide lists were taken from DICOM's own context groups (CID 7159, 7166, 8135,
    anatomic sites). The radiology lists hold SNOMED CT concepts PS3.16 does not list
    (e.g. 35486000 Subdural hemorrhage), so they cannot be checked this way."""
    lists = [code_lists.finding_types(slide=True), code_lists.sites(slide=True)]
    unknown = [
        c
        for listed in lists
        for c in listed
        if c.scheme != "SCT" or c.meaning.lower() not in _meanings(c.value)
    ]
    assert unknown == []


def test_a_slide_finding_is_offered_pathology_types_and_sites() -> None:
    slide_types = {c.meaning for c in code_lists.finding_types(slide=True)}
    assert {"Necrosis", "Carcinoma", "Nucleus"} <= slide_types
    assert "Intracranial hemorrhage" not in slide_types
    assert "Breast" in {c.meaning for c in code_lists.sites(slide=True)}
    assert "Necrosis" not in {c.meaning for c in code_lists.finding_types()}
    # the finding's own code comes first when the list lacks it
    own = Code("86049000", "SCT", "Malignant neoplasm, primary")
    assert code_lists.finding_types(own, slide=True)[0] == own
    assert code_lists.finding_types(code_lists.finding_types(slide=True)[2], slide=True)[0] != own
