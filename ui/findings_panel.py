"""The findings panel: one card per finding (``ui.finding_card``), or why there is none.

Cards show what IHE AI Results asks a display to show: the finding and its site,
certainty, urgency, the algorithm (name, version, manufacturer), each measurement
with its unit, and the kind of region. Activating a card emits the finding's
Tracking UID so the viewer can jump to its slice.

With a ``ReviewSession`` the cards act: each shows its review state (undecided,
confirmed, rejected with the reason, modified, added) in words and colour, and
has Confirm / Reject / Modify buttons; the panel's footer counts what is
decided and offers Add finding and Submit. Buttons only emit ``sig_action``;
the review controller applies them to the session, which stays the one state.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.domain import AIStatus, Finding, Verdict
from app.review.session import ReviewItem, ReviewSession
from ui import theme
from ui.finding_card import FindingCard
from ui.review_keys import key


def _card_key(card: tuple[Finding, bool]) -> tuple[str, bool]:
    return card[0].tracking_uid, card[1]


class FindingsPanel(QWidget):
    """The study's AI findings as cards, or a clear empty state; with a review, its footer."""

    sig_finding_activated = Signal(str)
    sig_action = Signal(str, str)  # action name, Tracking UID ("" for add / submit)
    sig_changed = Signal()  # the cards, their verdicts or the selection changed (the sidecar)
    sig_finding_visibility = Signal(str, bool)  # Tracking UID, its region shown on the image
    sig_finding_hovered = Signal(str)  # Tracking UID under the mouse, "" for none

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(260)
        self.heading = QLabel("AI findings", self)
        self.heading.setObjectName("heading")
        self.state = QLabel("Select a study", self)
        self.state.setObjectName("muted")
        self.state.setWordWrap(True)
        self.state.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        self._cards_host = QWidget()
        self._cards_layout = QVBoxLayout(self._cards_host)
        self._cards_layout.setContentsMargins(0, 0, 4, 0)
        self._cards_layout.setSpacing(8)
        self._cards_layout.addStretch(1)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self._cards_host)

        self.footer = QWidget(self)
        self.progress_label = QLabel("", self.footer)
        self.progress_label.setWordWrap(True)
        self.add_button = QPushButton("Add finding…", self.footer)
        self.add_button.setToolTip(key("add").tip())
        self.submit_button = QPushButton("Submit review", self.footer)
        self.submit_button.setObjectName("primary")
        self.submit_button.setToolTip(key("submit").tip())
        for button, name in ((self.add_button, "add"), (self.submit_button, "submit")):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(lambda _c=False, n=name: self.sig_action.emit(n, ""))
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        buttons.addWidget(self.submit_button)
        footer_layout = QVBoxLayout(self.footer)
        footer_layout.setContentsMargins(0, 6, 4, 0)
        footer_layout.addWidget(self.progress_label)
        footer_layout.addLayout(buttons)
        self.footer.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 8, 8, 8)
        layout.addWidget(self.heading)
        layout.addWidget(self.state)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.footer)
        self.cards: list[FindingCard] = []
        self.hidden: set[str] = set()  # findings whose regions the reader hid (kept per study)
        self._selected: str | None = None
        self._review: ReviewSession | None = None
        self._status = AIStatus.NONE
        self._problems: tuple[str, ...] = ()

    @property
    def selected(self) -> str | None:
        return self._selected

    @property
    def review(self) -> ReviewSession | None:
        return self._review

    def set_loading(self, text: str = "Loading AI results…") -> None:
        self._review = None
        self.hidden = set()  # a new study: everything shown
        self._clear_cards()
        self.footer.hide()
        self.heading.setText("AI findings")
        self._set_state(text)
        self.sig_changed.emit()

    def set_findings(
        self,
        findings: Sequence[Finding],
        status: AIStatus = AIStatus.DONE,
        problems: Sequence[str] = (),
    ) -> None:
        """Show ``findings`` read-only; with none, say why (no AI, nothing found, unreadable,
        pending)."""
        self._review = None
        self.footer.hide()
        self._show([(f, None) for f in findings], status, problems)
        self.sig_changed.emit()

    def set_review(
        self,
        session: ReviewSession,
        status: AIStatus = AIStatus.DONE,
        problems: Sequence[str] = (),
    ) -> None:
        """Show the session's findings as acting cards (and the read-only ones without
        buttons); call ``refresh_review`` after each change of the session."""
        self._review = session
        self._status, self._problems = status, tuple(problems)
        self.refresh_review()

    def refresh_review(self) -> None:
        session = self._review
        if session is None:
            return
        selected, scrolled = self._selected, self.scroll.verticalScrollBar().value()
        items = {i.tracking_uid: i for i in session.items}
        shown = [(c.finding, c.review is not None) for c in self.cards]
        wanted = [(i.current, True) for i in session.items] + [
            (f, False) for f in session.read_only
        ]
        if sorted(shown, key=_card_key) == sorted(wanted, key=_card_key) and len(shown) == len(
            wanted
        ):
            # Same findings, same content: only verdicts changed; no rebuild, no flicker.
            for card in self.cards:
                if card.review is not None:
                    card.set_review(items[card.finding.tracking_uid])
        else:
            cards: list[tuple[Finding, ReviewItem | None]] = [
                (i.current, i) for i in session.items
            ]
            cards += [(f, None) for f in session.read_only]
            self._show(cards, self._status, self._problems)
        self.footer.setVisible(bool(session.items) or bool(session.results))
        self.add_button.show()
        self.submit_button.show()
        decided = len(session.items) - len(session.undecided())
        total = len(session.items)
        self.progress_label.setText(
            f"{decided} of {total} decided" if total else "No finding to decide"
        )
        editable = any(r.editable for r in session.results) and not session.observer
        self.add_button.setEnabled(editable)
        self.submit_button.setEnabled(editable and not session.undecided())
        if session.observer:
            # The profile's role: findings can be looked at, not decided (the session
            # refuses too; the buttons only say so early).
            for card in self.cards:
                for button in card.buttons.values():
                    button.setEnabled(False)
            self.progress_label.setText("Observer: you can view the findings, not decide")
        elif not editable:
            self.progress_label.setText("Read-only AI result: nothing to submit")
        self.select(selected if any(c.finding.tracking_uid == selected for c in self.cards)
                    else None)
        self.scroll.verticalScrollBar().setValue(scrolled)
        self.sig_changed.emit()

    def set_submitted(self, count: int) -> None:
        """The review is committed: cards stay as decided, without buttons."""
        self._review = None
        for card in self.cards:
            for button in card.buttons.values():
                button.hide()
        self.add_button.hide()
        self.submit_button.hide()
        self.progress_label.setText(
            f"Review submitted: {count} DICOM object(s) queued for the archive (see the outbox)"
        )
        self.footer.show()
        self.sig_changed.emit()

    def select(self, tracking_uid: str | None) -> None:
        """Mark one card as the finding on screen (no signal)."""
        self._selected = tracking_uid
        for card in self.cards:
            card.set_selected(card.finding.tracking_uid == tracking_uid)
            if card.finding.tracking_uid == tracking_uid:
                self.scroll.ensureWidgetVisible(card, 0, 8)
        self.sig_changed.emit()

    def step(self, delta: int) -> str | None:
        """Select the next (+1) or previous (-1) card and activate it; returns its UID."""
        if not self.cards:
            return None
        uids = [c.finding.tracking_uid for c in self.cards]
        if self._selected in uids:
            index = (uids.index(self._selected) + delta) % len(uids)
        else:
            index = 0 if delta > 0 else len(uids) - 1
        self._on_card_activated(uids[index])
        return uids[index]

    def card(self, tracking_uid: str) -> FindingCard | None:
        return next((c for c in self.cards if c.finding.tracking_uid == tracking_uid), None)

    def clear(self, text: str = "Select a study") -> None:
        self._review = None
        self._clear_cards()
        self.footer.hide()
        self.heading.setText("AI findings")
        self._set_state(text)
        self.sig_changed.emit()

    # -- internals ---------------------------------------------------------------------
    def _show(
        self,
        cards: Sequence[tuple[Finding, ReviewItem | None]],
        status: AIStatus,
        problems: Sequence[str],
    ) -> None:
        self._clear_cards()
        count = len(cards)
        self.heading.setText(f"AI findings ({count})" if count else "AI findings")
        reason = "; ".join(problems) if problems else "unknown reason"
        if status is AIStatus.UNREADABLE:
            self._set_state(f"AI result unreadable: {reason}", warn=True)
        elif status is AIStatus.PENDING:
            self._set_state(f"AI result not retrieved yet: {reason}", warn=True)
        elif cards:
            self._set_state("")
        elif status is AIStatus.NONE:
            self._set_state("No AI findings\nNo AI result is stored for this study.")
        else:
            self._set_state("AI: no finding\nThe AI analysed this study and reported nothing.")
        ordered = sorted(
            cards,
            key=lambda c: (
                c[1] is not None and c[1].verdict is Verdict.ADDED,
                -int(c[0].urgency),
                -(c[0].certainty or 0.0),
            ),
        )
        for finding, item in ordered:
            card = FindingCard(
                finding, self._cards_host, review=item,
                shown=finding.tracking_uid not in self.hidden,
            )
            card.sig_activated.connect(self._on_card_activated)
            card.sig_visibility.connect(self._on_card_visibility)
            card.sig_hovered.connect(
                lambda uid, inside: self.sig_finding_hovered.emit(uid if inside else "")
            )
            card.sig_action.connect(self.sig_action)
            self._cards_layout.insertWidget(self._cards_layout.count() - 1, card)
            self.cards.append(card)

    def _on_card_visibility(self, tracking_uid: str, shown: bool) -> None:
        if shown:
            self.hidden.discard(tracking_uid)
        else:
            self.hidden.add(tracking_uid)
        self.sig_finding_visibility.emit(tracking_uid, shown)

    def _on_card_activated(self, tracking_uid: str) -> None:
        self.select(tracking_uid)
        self.sig_finding_activated.emit(tracking_uid)

    def _set_state(self, text: str, *, warn: bool = False) -> None:
        self.state.setText(text)
        self.state.setVisible(bool(text))
        colour = theme.URGENT if warn else theme.TEXT_MUTED
        self.state.setStyleSheet(f"color: {colour};")

    def _clear_cards(self) -> None:
        for card in self.cards:
            card.setParent(None)
            card.deleteLater()
        self.cards = []
        self._selected = None
