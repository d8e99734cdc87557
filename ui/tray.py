"""The tray icon with the count of unread critical findings, and desktop notifications.

A new critical AI result interrupts the reader once: a desktop notification (and,
if the setting asks for it, a sound) that opens the study when clicked. The icon's
badge keeps the count of critical findings not yet looked at. Notifications name
the finding and the study's modality and description, never the patient: they can
appear on a screen others see.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRect, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon, QWidget

from app.worklist.alerts import CriticalAlert
from ui import theme

ICON_SIZE = 64


def badge_icon(base: QIcon, count: int) -> QIcon:
    """``base`` with a red badge holding ``count`` (no badge at zero)."""
    pixmap = base.pixmap(ICON_SIZE, ICON_SIZE)
    if pixmap.isNull():
        pixmap = QPixmap(ICON_SIZE, ICON_SIZE)
        pixmap.fill(QColor(theme.SURFACE))
    if count:
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        side = ICON_SIZE * 5 // 8
        rect = QRect(ICON_SIZE - side, 0, side, side)
        painter.setBrush(QColor(theme.CRITICAL))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawEllipse(rect)
        font = QFont()
        font.setBold(True)
        font.setPixelSize(side * 2 // 3 if count < 10 else side // 2)
        painter.setFont(font)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(count) if count < 100 else "99+")
        painter.end()
    return QIcon(pixmap)


def alert_text(alert: CriticalAlert) -> str:
    certainty = f" ({alert.certainty:.2f})" if alert.certainty is not None else ""
    study = " ".join(p for p in (alert.modality, alert.description) if p) or "a study"
    return f"{alert.finding}{certainty} in {study}. Click to open it."


class CriticalTray(QObject):
    """Tray icon + notifications; ``sig_open_study`` when the reader clicks one."""

    sig_open_study = Signal(str)
    sig_show_full = Signal()
    sig_show_sidecar = Signal()
    sig_quit = Signal()

    def __init__(
        self,
        base_icon: QIcon,
        *,
        sound: bool = False,
        menu_parent: QWidget | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.base_icon = base_icon
        self.sound = sound
        self.count = 0
        self.last_alert: CriticalAlert | None = None
        self.announced: list[CriticalAlert] = []
        self.icon = QSystemTrayIcon(badge_icon(base_icon, 0), self)
        self.icon.setToolTip("AI Review Companion")
        # Owned by a window, so it goes with it (a menu left to the garbage collector
        # outlives the X connection).
        menu = QMenu(menu_parent)
        for text, signal in (
            ("Full window", self.sig_show_full),
            ("Sidecar", self.sig_show_sidecar),
            ("Quit", self.sig_quit),
        ):
            action = QAction(text, menu)
            action.triggered.connect(signal.emit)
            menu.addAction(action)
        self._menu = menu
        self.icon.setContextMenu(menu)
        self.icon.messageClicked.connect(self._on_message_clicked)
        self.icon.activated.connect(self._on_activated)

    @property
    def available(self) -> bool:
        """Whether the desktop has a tray to put the icon in (a plain X server has none)."""
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> None:
        if self.available:
            self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def set_unread(self, count: int) -> None:
        self.count = count
        self.icon.setIcon(badge_icon(self.base_icon, count))
        self.icon.setToolTip(
            f"AI Review Companion — {count} unread critical finding{'s' if count != 1 else ''}"
            if count
            else "AI Review Companion — no unread critical findings"
        )

    def notify(self, alerts: list[CriticalAlert], fallback: QWidget | None = None) -> None:
        """Announce new critical findings (one notification; the newest one opens on click)."""
        if not alerts:
            return
        self.last_alert = alerts[-1]
        self.announced.extend(alerts)
        title = "Critical AI finding" if len(alerts) == 1 else f"{len(alerts)} critical AI findings"
        text = alert_text(alerts[-1])
        if self.available and QSystemTrayIcon.supportsMessages():
            self.icon.showMessage(title, text, QSystemTrayIcon.MessageIcon.Warning, 15_000)
        elif fallback is not None:
            # No tray to notify through: at least make the window ask for attention.
            QApplication.alert(fallback, 0)
        if self.sound:
            QApplication.beep()

    def _on_message_clicked(self) -> None:
        if self.last_alert is not None:
            self.sig_open_study.emit(self.last_alert.study_uid)

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.sig_show_sidecar.emit()



