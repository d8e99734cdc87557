"""Finding cards: what a card shows, what a click says, and the empty states."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from app.domain import AIStatus, Algorithm, Code, Finding, Measurement, Region, Urgency
from tests.ui.qt_helpers import dispose
from ui.findings_panel import FindingsPanel

pytestmark = pytest.mark.gui


def _finding(uid: str, urgency: Urgency, certainty: float | None) -> Finding:
    return Finding(
        tracking_uid=uid,
        finding=Code("1386000", "SCT", "Intracranial hemorrhage"),
        site=Code("12738006", "SCT", "Brain"),
        certainty=certainty,
        urgency=urgency,
        algorithm=Algorithm("BleedFinder", "2.1", "Acme AI"),
        regions=(Region("POLYLINE", ((1.0, 2.0), (3.0, 4.0)), referenced_sop_uid="1.2"),),
        measurements=(
            Measurement(Code("118565006", "SCT", "Volume"), 12.4, Code("ml", "UCUM", "milliliter")),
        ),
        source_sop_uid="1.2.9",
    )


@pytest.fixture()
def panel(qtbot: QtBot) -> Iterator[FindingsPanel]:
    widget = FindingsPanel()
    widget.resize(320, 600)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    dispose(widget)


def _texts(widget: object) -> list[str]:
    return [label.text() for label in widget.findChildren(QLabel)]  # type: ignore[attr-defined]


def test_cards_show_what_ihe_air_asks_for(panel: FindingsPanel, qtbot: QtBot) -> None:
    routine = _finding("1.1", Urgency.ROUTINE, None)
    critical = _finding("1.2", Urgency.CRITICAL, 0.93)
    panel.set_findings([routine, critical])
    assert panel.heading.text() == "AI findings (2)"
    assert [c.finding.tracking_uid for c in panel.cards] == ["1.2", "1.1"]  # most urgent first
    texts = _texts(panel.cards[0])
    for expected in ("Intracranial hemorrhage", "CRITICAL", "Site: Brain", "Certainty: 0.93",
                     "Volume: 12.4 ml", "BleedFinder 2.1 · Acme AI", "Region: Polyline (on one image)"):
        assert expected in texts, expected
    assert "Certainty: –" in _texts(panel.cards[1])
    assert not panel.state.isVisible()
    with qtbot.waitSignal(panel.sig_finding_activated) as blocker:
        qtbot.mouseClick(panel.cards[1], Qt.MouseButton.LeftButton)
    assert blocker.args == ["1.1"] and panel.selected == "1.1"
    assert panel.cards[1].property("selected") is True
    panel.cards[0].setFocus()
    with qtbot.waitSignal(panel.sig_finding_activated) as blocker:
        qtbot.keyClick(panel.cards[0], Qt.Key.Key_Return)
    assert blocker.args == ["1.2"]


@pytest.mark.parametrize(
    ("status", "problems", "expected"),
    [
        (AIStatus.NONE, (), "No AI findings"),
        (AIStatus.DONE, (), "AI: no finding"),
        (AIStatus.UNREADABLE, ("bad content tree",), "AI result unreadable: bad content tree"),
    ],
)
def test_empty_states(panel: FindingsPanel, status: AIStatus, problems: tuple[str, ...],
                      expected: str) -> None:
    panel.set_findings([], status, problems)
    assert panel.cards == []
    assert panel.state.isVisible() and panel.state.text().startswith(expected)
