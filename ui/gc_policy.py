"""Python's cyclic garbage collector runs only in the GUI thread.

Automatic collection runs in whichever thread happens to allocate. When it frees a
cycle that holds a QObject with live timers (qasync's timer object, a QTimer, the
VTK widget) from a loader or inference thread, Qt cannot stop those timers
("QObject::~QObject: Timers cannot be stopped from another thread"), and the GUI
thread's next timer tick dereferences freed memory: a segfault in
``QTimerInfoList::activateTimers``, seen at random in the UI tests. The remedy is the
one pyqtgraph ships (``pyqtgraph.util.garbage_collector``): switch automatic
collection off and collect from a timer on the GUI thread, with the same thresholds.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

INTERVAL_MS = 250
_NAME = "companion-gc-policy"


class GuiThreadCollector(QObject):
    """Collects generation 0 (and older ones when due) on each tick of a GUI-thread timer."""

    def __init__(self, app: QCoreApplication, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(app)
        self.setObjectName(_NAME)
        self._thresholds = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        self._timer.start(interval_ms)

    def check(self) -> None:
        """Collect the generations whose allocation counts passed their thresholds."""
        counts = gc.get_count()
        if counts[0] <= self._thresholds[0]:
            return
        generation = 0
        if counts[1] > self._thresholds[1]:
            generation = 2 if counts[2] > self._thresholds[2] else 1
        gc.collect(generation)


def collect_in_gui_thread(app: QCoreApplication) -> GuiThreadCollector:
    """Install the policy on ``app`` once (later calls return the installed collector).

    Must be called from the thread that owns ``app``.
    """
    if QThread.currentThread() != app.thread():
        raise RuntimeError("the garbage-collection policy must be installed from the GUI thread")
    existing = app.findChild(GuiThreadCollector, _NAME)
    if isinstance(existing, GuiThreadCollector):
        return existing
    return GuiThreadCollector(app)
