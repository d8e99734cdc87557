"""``companion --self-test``: can this machine run the companion? One answer per check.

Each check says ok / warning / failed and why. Failed means the app cannot do its job
here (no display platform, no decoder for a common transfer syntax, a folder it must
write is read-only, a configured archive unreachable); warning means a part is missing
that the app can live without (no GPU, no torch in the review flavor, an insecure
keyring: reviews are then refused but viewing works). Qt and VTK are probed in a child
process (``companion --self-test-probe``), because a Qt platform plugin that fails to
load aborts the process that tries it; this module stays Qt-free.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from app.errors import CompanionError
from app.settings import Settings, cache_dir, config_dir, data_dir

Status = Literal["ok", "warning", "failed"]

# Transfer syntaxes a reader meets in practice (DESIGN.md §4), by name.
TRANSFER_SYNTAXES = (
    ("1.2.840.10008.1.2", "Implicit VR Little Endian"),
    ("1.2.840.10008.1.2.1", "Explicit VR Little Endian"),
    ("1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian"),
    ("1.2.840.10008.1.2.4.50", "JPEG Baseline"),
    ("1.2.840.10008.1.2.4.57", "JPEG Lossless"),
    ("1.2.840.10008.1.2.4.70", "JPEG Lossless SV1"),
    ("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless"),
    ("1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless"),
    ("1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless"),
    ("1.2.840.10008.1.2.4.91", "JPEG 2000"),
    ("1.2.840.10008.1.2.5", "RLE Lossless"),
)
PROBE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def folders() -> list[Check]:
    """The settings, data and cache folders exist (or can be made) and take a file."""
    out = []
    for name, folder in (("settings folder", config_dir()), ("data folder", data_dir()),
                         ("cache folder", cache_dir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".self-test-"):
                pass
            out.append(Check(name, "ok", f"{folder} is writable"))
        except OSError as exc:
            out.append(Check(name, "failed", f"{folder} is not writable: {exc.strerror or exc}"))
    return out


def keyring_backend() -> Check:
    import keyring

    from app.security.keyring_store import check_keyring_backend

    backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    try:
        check_keyring_backend(backend, purpose="sign-in secrets and the audit key")
    except CompanionError as exc:
        return Check("keyring", "warning",
                     f"{exc} (viewing works; reviews cannot be submitted to a server)")
    return Check("keyring", "ok", f"secure backend {name}")


def decoders() -> list[Check]:
    """One check per transfer syntax: can pydicom decode its pixel data here?"""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    out = []
    for uid, name in TRANSFER_SYNTAXES:
        try:
            decoder = get_decoder(UID(uid))
        except NotImplementedError:
            out.append(Check(f"decoder {name}", "failed", f"no decoder for {uid}"))
            continue
        if decoder.is_available:
            plugins = ", ".join(decoder.available_plugins) or "built in"
            out.append(Check(f"decoder {name}", "ok", plugins))
        else:
            missing = "; ".join(decoder.missing_dependencies) or "a decoder plugin"
            out.append(Check(f"decoder {name}", "failed", f"missing {missing}"))
    return out


def torch_and_gpu() -> Check:
    """torch (full flavor) and its GPU; both optional."""
    from inference.devices import describe

    device = describe()
    if device.problem:
        return Check("torch", "warning", f"installed but cannot be imported: {device.problem}")
    if not device.torch_version:
        return Check("torch", "warning",
                     "not installed (review flavor): local inference unavailable")
    if not device.gpu_name:
        return Check("torch", "warning", f"torch {device.torch_version}; no CUDA GPU (CPU)")
    return Check("torch", "ok", f"torch {device.torch_version}; GPU {device.gpu_name}, "
                 f"{device.gpu_memory_gib:.1f} GiB")


def archives(settings: Settings) -> list[Check]:
    """Each configured connection profile answers a QIDO-RS search, with its auth."""
    from app.archive.client import open_dicomweb
    from app.security.http_auth import session_for

    out = []
    for profile in settings.profiles:
        name = f"archive {profile.name}"
        try:
            archive = open_dicomweb(profile.url, session=session_for(profile), timeout=10)
            archive.check()
        except CompanionError as exc:
            out.append(Check(name, "failed", str(exc)))
        else:
            out.append(Check(name, "ok", f"{profile.url} answers"))
    if not out:
        out.append(Check("archives", "ok", "none configured (the offline demo is used)"))
    return out


def display_probe() -> list[Check]:
    """Qt platform plugin and VTK OpenGL, checked in a child process."""
    frozen = getattr(sys, "frozen", False)
    command = [sys.executable] if frozen else [sys.executable, "-m", "app"]
    command.append("--self-test-probe")
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False,
            env=dict(os.environ),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Check("Qt platform", "failed", f"the display probe did not run: {exc}")]
    try:
        return [Check(**c) for c in json.loads(proc.stdout.strip().splitlines()[-1])]
    except (ValueError, IndexError, TypeError):
        lines = proc.stderr.strip().splitlines() or ["no output"]
        telling = [ln for ln in lines if "could not" in ln or "no Qt platform" in ln]
        why = (telling or lines)[0 if telling else -1].strip()
        return [Check("Qt platform", "failed",
                      f"the Qt platform plugin did not load (exit {proc.returncode}): {why}")]


def run_all(settings: Settings) -> list[Check]:
    return [
        *display_probe(),
        *decoders(),
        keyring_backend(),
        torch_and_gpu(),
        *folders(),
        *archives(settings),
    ]


def exit_code(checks: Sequence[Check]) -> int:
    return 1 if any(c.status == "failed" for c in checks) else 0


def report(checks: Sequence[Check], *, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            {"ok": exit_code(checks) == 0, "checks": [asdict(c) for c in checks]}, indent=2
        )
    width = max(len(c.name) for c in checks)
    lines = [f"{c.status.upper():<8} {c.name:<{width}}  {c.detail}" for c in checks]
    failed = sum(c.status == "failed" for c in checks)
    warned = sum(c.status == "warning" for c in checks)
    lines.append(f"self-test: {failed} failed, {warned} warning(s), {len(checks)} checks")
    return "\n".join(lines)
