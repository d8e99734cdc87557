"""The outbox in the window: a refused send (HTTP 403) is parked, shown with the server's
words, and the reader can retry or discard it. The 403 comes from the loopback stand-in
server of the sender tests (Orthanc cannot be made to refuse a STOW that way)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from app.archive.client import open_dicomweb
from app.delivery.outbox import Outbox, OutgoingObject
from app.delivery.sender import Sender
from tests.app.test_sender_orthanc import StubArchive, stub  # noqa: F401 - fixture
from tests.support import dicom_data
from tests.ui.qt_helpers import dispose
from tests.ui.test_review_ui import answer_modal
from ui.outbox_view import OutboxDialog, OutboxIndicator

pytestmark = pytest.mark.gui


def test_parked_item_is_shown_with_the_reason_and_can_be_retried_or_discarded(
    stub: StubArchive, qtbot: QtBot, tmp_path: Path  # noqa: F811 - the fixture
) -> None:
    stub.status, stub.body = 403, b"Storage of SR is not permitted for this AE"
    stub.headers = {"Content-Type": "text/plain"}
    outbox = Outbox(tmp_path / "journal.sqlite3")
    first, second = outbox.submit(
        [OutgoingObject(dicom_data.sr(f"view-{n}"), "assessment SR") for n in range(2)]
    )
    host = QWidget()
    indicator = OutboxIndicator(outbox, host)
    assert indicator.text() == "Outbox: sending 2"

    report = Sender(outbox, open_dicomweb(stub.url)).run_once()
    assert report.parked == [first, second] and stub.posts == 2
    assert indicator.poll() is not None
    assert indicator.text() == "Outbox: 2 need(s) attention"

    dialog = OutboxDialog(outbox, host)
    try:
        assert dialog.table.rowCount() == 2
        cells = [dialog.table.item(0, c).text() for c in range(dialog.table.columnCount())]
        assert cells[0] == "parked" and cells[1] == "assessment SR"
        assert cells[4].startswith("HTTP 403")
        assert cells[5] == "Storage of SR is not permitted for this AE"
        assert "2 need(s) attention" in dialog.summary.text()

        dialog.table.selectRow(0)
        assert dialog.retry_button.isEnabled()
        dialog.retry_button.click()
        assert outbox.get(first).state == "pending" and outbox.get(first).verify_first

        row = next(r for r, i in enumerate(dialog.items) if i.id == second)
        dialog.table.selectRow(row)
        answered = answer_modal(qtbot, QMessageBox, lambda box: box.button(  # type: ignore[attr-defined]
            QMessageBox.StandardButton.Yes).click())
        dialog.discard_button.click()
        assert answered and outbox.get(second).state == "discarded"
        assert "1 waiting to be sent" in dialog.summary.text()
    finally:
        dialog.close()
        dispose(host)
        outbox.close()
