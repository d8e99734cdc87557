"""The series picker shows whole labels, or shortened ones that keep the image count."""

from __future__ import annotations

from ui.study_view import SERIES_LABEL_CHARS, series_label


def test_short_labels_are_kept_whole() -> None:
    assert series_label("CT Head 3.0 H30s (44)") == "CT Head 3.0 H30s (44)"


def test_long_labels_fit_the_combo_and_keep_both_ends() -> None:
    text = "MR Axial T2 FLAIR fat-sat post contrast (180)"
    short = series_label(text)
    assert len(short) == SERIES_LABEL_CHARS
    assert short.startswith("MR Axial") and short.endswith("(180)") and "…" in short
