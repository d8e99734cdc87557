"""Recently viewed series, kept in memory up to a bound in MB (Qt-free).

Going back to the previous study shows its images at once. Only complete volumes
without gaps are kept (a gap may be a passing network failure). The least
recently used series go first; a series bigger than the whole bound is not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from app.archive.volume import ImageVolume

MB = 1024 * 1024


class SeriesCache:
    """LRU cache of ``ImageVolume`` by (study UID, series UID), bounded in bytes."""

    def __init__(self, max_mb: float) -> None:
        if max_mb < 0:
            raise ValueError(f"series cache size must be >= 0 MB, got {max_mb!r}")
        self.max_bytes = int(max_mb * MB)
        self._items: OrderedDict[tuple[str, str], ImageVolume] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Pixel bytes held now."""
        with self._lock:
            return sum(v.pixels.nbytes for v in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._items

    def get(self, study_uid: str, series_uid: str) -> ImageVolume | None:
        with self._lock:
            volume = self._items.get((study_uid, series_uid))
            if volume is not None:
                self._items.move_to_end((study_uid, series_uid))
            return volume

    def put(self, volume: ImageVolume) -> bool:
        """Keep ``volume`` if it is complete and fits; False when it is not kept."""
        size = volume.pixels.nbytes
        if size > self.max_bytes or volume.gaps or not volume.complete:
            return False
        key = (volume.study_uid, volume.series_uid)
        with self._lock:
            self._items.pop(key, None)
            self._items[key] = volume
            total = sum(v.pixels.nbytes for v in self._items.values())
            while total > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                total -= dropped.pixels.nbytes
        return True

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
