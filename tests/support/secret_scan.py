"""The scan for leaked secrets, run once the whole test session is done (issue 7).

Tests (and the fixtures and stand-ins they use) add every password and token they
handle to ``SECRETS`` and every folder they write to ``FOLDERS``: the in-memory keyring
adds what is stored in it, the token state's accept hook the tokens the app took,
the OpenID provider and the FHIRcast hub their passwords and tokens, the isolation
fixture each test's ``COMPANION_HOME`` and the session's base temp folder (every
``tmp_path`` is under it). ``tests/conftest.py``'s ``pytest_sessionfinish`` then runs
``scan_session`` and fails the session when a secret is found in any file: settings,
logs, the journal (outbox, audit, reviews) databases, or anything else a test left.

A secret is searched raw, as UTF-16 and URL-encoded; secrets under 8 characters are
not searched (too likely to occur by chance). A session leaves hundreds of megabytes
(demo archives, Orthanc storage) and registers about a hundred secrets, so the search
is one pass per file for all of them (``_Needles``): a lookup table of every needle's
first two bytes picks the candidate offsets, their next eight bytes are looked up
among the needles' prefixes, and only those candidates are compared in full.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

import numpy as np

SECRETS: set[str] = set()  # every password and token the tests handled
FOLDERS: set[Path] = set()  # every folder the tests wrote to
SESSION_START = time.time()
MIN_LENGTH = 8
MAX_BYTES = 50 * 1024 * 1024
SKIP_DIRS = {"node_modules"}


def register_secret(*values: object) -> None:
    """Remember secrets to look for at the end of the session (non-strings are ignored)."""
    for value in values:
        if isinstance(value, str) and value:
            SECRETS.add(value)


def register_folder(path: Path | str) -> None:
    FOLDERS.add(Path(path))


def label(secret: str) -> str:
    """How a found secret is named in a report (never the secret itself)."""
    return f"{secret[:4]}…({len(secret)} chars)"


class _Needles:
    """Every encoding of every secret, searched in one pass over a file's bytes."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.names: dict[bytes, str] = {}
        for secret in sorted({s for s in secrets if len(s) >= MIN_LENGTH}):
            name = label(secret)
            self.names[secret.encode()] = name
            self.names[secret.encode("utf-16-le")] = name + " utf-16"
            encoded = quote(secret, safe="")
            if encoded != secret:
                self.names[encoded.encode()] = name + " url-encoded"
        self.first_two = np.zeros(65536, dtype=bool)
        self.by_prefix: dict[bytes, list[bytes]] = {}
        for needle in self.names:  # every needle has at least 8 bytes
            self.first_two[needle[0] | (needle[1] << 8)] = True
            self.by_prefix.setdefault(needle[:8], []).append(needle)
        self.prefixes = np.unique(np.frombuffer(b"".join(self.by_prefix), dtype="<u8"))

    def __bool__(self) -> bool:
        return bool(self.names)

    def search(self, data: bytes) -> list[str]:
        """The names of the needles found in ``data``."""
        buf = np.frombuffer(data, dtype=np.uint8)
        if len(buf) < 8:
            return []
        pairs = buf[:-7].astype(np.uint16)  # the two bytes at every offset (little-endian)
        pairs |= buf[1:-6].astype(np.uint16) << 8
        offsets = np.flatnonzero(self.first_two[pairs])
        del pairs
        if not offsets.size:
            return []
        eight = buf[offsets[:, None] + np.arange(8)].copy().view("<u8").ravel()
        at = np.searchsorted(self.prefixes, eight)
        at[at == len(self.prefixes)] = 0
        found: dict[str, None] = {}
        for offset in offsets[self.prefixes[at] == eight].tolist():
            for needle in self.by_prefix[data[offset : offset + 8]]:
                if data.startswith(needle, offset):
                    found[self.names[needle]] = None
        return list(found)


def _files(roots: Iterable[Path], top_level_since: float | None = None) -> Iterable[Path]:
    seen: set[Path] = set()
    for root in sorted(set(roots)):
        if root.is_file():
            yield root
            continue
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            for name in names:
                path = Path(folder) / name
                if path not in seen:  # a registered folder inside another one
                    seen.add(path)
                    yield path
    if top_level_since is not None:
        for entry in Path(tempfile.gettempdir()).iterdir():
            try:
                if entry.is_file() and entry.stat().st_mtime >= top_level_since:
                    yield entry
            except OSError:
                continue


def find_secrets(
    roots: Iterable[Path],
    secrets: Iterable[str],
    top_level_since: float | None = None,
    counted: list[int] | None = None,
) -> list[tuple[Path, str]]:
    """(file, which secret) for every secret found in a file under ``roots`` (and in the
    files made at the top of the system temp folder since ``top_level_since``); the
    number of files read is appended to ``counted``."""
    needles = _Needles(secrets)
    found: list[tuple[Path, str]] = []
    files = 0
    if not needles:
        return found
    for path in _files(roots, top_level_since):
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        files += 1
        found.extend((path, name) for name in needles.search(data))
    if counted is not None:
        counted.append(files)
    return found


def scan_session() -> tuple[list[tuple[Path, str]], str]:
    """Every registered secret in every registered folder and new top-level temp file:
    what was found, and a one-line summary of what was searched."""
    roots = [p for p in FOLDERS if p.exists()]
    counted: list[int] = []
    started = time.monotonic()
    found = find_secrets(roots, SECRETS, top_level_since=SESSION_START, counted=counted)
    searched = len({s for s in SECRETS if len(s) >= MIN_LENGTH})
    summary = (
        f"secret scan: {searched} secrets searched in {sum(counted)} files under "
        f"{len(roots)} folders ({time.monotonic() - started:.1f} s): "
        + (f"{len(found)} found" if found else "none found")
    )
    return found, summary


def report(found: list[tuple[Path, str]]) -> str:
    return "secrets found in files the tests left:\n" + "\n".join(
        f"  {path}: {name}" for path, name in found
    )
