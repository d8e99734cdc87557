"""Garbage cycles holding QObjects are freed on the GUI thread, never on a worker.

A worker thread that allocates used to run Python's cyclic collector itself, freeing
QObjects with live timers there; Qt then left the timers registered on the GUI thread
and the next tick crashed (ui/gc_policy.py).
"""

from __future__ import annotations

import gc
import threading

import pytest
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from ui.gc_policy import collect_in_gui_thread

pytestmark = pytest.mark.gui


def test_a_cycle_dropped_while_a_worker_allocates_is_freed_on_the_gui_thread(
    qapp: QApplication, qtbot: QtBot
) -> None:
    assert collect_in_gui_thread(qapp) is collect_in_gui_thread(qapp)  # installed once
    assert not gc.isenabled()
    freed_on: list[str] = []

    owner = QObject()
    timer = QTimer(owner)
    timer.start(60_000)
    owner.cycle = owner  # type: ignore[attr-defined]  # only the collector can free it
    owner.destroyed.connect(
        lambda: freed_on.append(threading.current_thread().name),
        Qt.ConnectionType.DirectConnection,
    )
    del owner, timer

    kept: list[list[int]] = []

    def allocate() -> None:  # keeps far more new objects than generation 0's threshold
        kept.extend([i] for i in range(200_000))

    worker = threading.Thread(target=allocate, name="loader-worker")
    worker.start()
    worker.join()
    assert freed_on == []  # the worker's allocations did not run the collector

    qtbot.waitUntil(lambda: bool(freed_on), timeout=5000)
    assert freed_on == [threading.main_thread().name]
