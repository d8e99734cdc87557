"""Following the PACS: the study the reader opens there opens here (FHIRcast).

The subscriber (``app.context.fhircast``) runs on its own thread and calls back
there; this adapter carries each change to the Qt thread through a queued signal
and acts on it: an opened study opens in the companion (sidecar or full window),
a closed one closes. The status bar shows the connection state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

from ui import theme
from ui.workstation import Workstation

log = logging.getLogger(__name__)
STOP_WAIT_S = 3.0  # an exit waits this long for the hub to take the unsubscribe


class Subscriber(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


# (on_context, on_status) -> a subscriber that calls them from its own thread
SubscriberFactory = Callable[[Callable[[Any], None], Callable[[Any], None]], Subscriber]


class ContextFollower(QObject):
    """Opens in the companion what the PACS opens; one per main window."""

    sig_context = Signal(object)  # ContextChange, queued to the Qt thread
    sig_status = Signal(object)  # FhircastStatus
    sig_followed = Signal(str)  # study UID opened because the PACS opened it

    def __init__(self, workstation: Workstation, factory: SubscriberFactory) -> None:
        super().__init__(workstation)
        self.workstation = workstation
        window = workstation.window
        self.label = QLabel("FHIRcast: connecting", window)
        self.label.setToolTip("Following the PACS's current study over FHIRcast")
        window.statusBar().addPermanentWidget(self.label)
        self.sig_context.connect(self._on_context)
        self.sig_status.connect(self._on_status)
        self.subscriber = factory(self.sig_context.emit, self.sig_status.emit)
        window.sig_closed.connect(self.stop)
        self.subscriber.start()

    def _on_context(self, change: Any) -> None:
        window = self.workstation.window
        if change.kind == "open":
            if change.study_uid:
                if change.study_uid != window.study_view.study_uid:
                    self.workstation.open_study(change.study_uid)
                    self.sig_followed.emit(change.study_uid)
            elif change.accession:
                self.workstation.open_accession(change.accession)
            else:
                window.statusBar().showMessage(
                    "The PACS opened a study without a Study Instance UID or accession number: "
                    "it cannot be shown here",
                    15_000,
                )
        elif change.kind == "close":
            open_uid = window.study_view.study_uid
            if open_uid is not None and change.study_uid in (None, open_uid):
                window.close_study("The study was closed in the PACS")

    def _on_status(self, status: Any) -> None:
        self.label.setText(status.text())
        failed = getattr(status.state, "value", "") == "failed"
        self.label.setStyleSheet(f"color: {theme.CRITICAL};" if failed else "")

    def stop(self) -> None:
        """Unsubscribe without holding the exit up for a hub that does not answer."""
        stopper = threading.Thread(target=self.subscriber.stop, name="fhircast-stop", daemon=True)
        stopper.start()
        stopper.join(STOP_WAIT_S)
