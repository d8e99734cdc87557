"""One sender at a time per outbox file, across processes: an OS file lock.

Crash recovery puts items left in ``sending`` back to pending, which is right only
when the process that claimed them is gone. Without a lock, a second process
(``companion outbox flush`` beside the running app) would take the first one's
in-flight item for a crashed one and store it a second time. A sender therefore
sends only while it holds this lock; the OS drops the lock when its process ends,
however it ends, so whoever gets it next may recover what is left in ``sending``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from app.errors import CompanionError


class SendLockError(CompanionError):
    """The lock file beside the outbox could not be opened."""


class SendLock:
    """An exclusive, non-blocking lock on ``path`` (created if missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if no one (no other process, no other ``SendLock``) holds it."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SendLockError(f"cannot open the send lock {self.path}: {exc}") from exc
        if _lock(fd):
            self._fd = fd
            return True
        os.close(fd)
        return False

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            _unlock(fd)
            os.close(fd)


if sys.platform == "win32":
    import msvcrt

    def _lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass

else:
    import fcntl

    def _lock(fd: int) -> bool:
        # flock locks belong to the open file, so two SendLocks in one process exclude
        # each other too (POSIX record locks would not).
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
