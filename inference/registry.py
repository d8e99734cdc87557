"""The models this workstation can run: shipped bundles plus the user's models folder.

Every bundle found is listed. One that cannot run stays in the list with the
reason (bad manifest, missing weights, needs a GPU, torch missing or too old), the
way pydicom lists decoders it cannot use: the Models dialog shows why, nobody gets
a crash. Listing reads JSON and file headers only; torch is not imported unless a
bundle needs a GPU (to ask whether there is one).
"""

from __future__ import annotations

import importlib.metadata
import logging
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.errors import CompanionError
from inference.bundle import TORCHSCRIPT, BundleError, ModelManifest, read_manifest, version_tuple

log = logging.getLogger(__name__)


class ModelUnavailable(CompanionError):
    """The chosen model cannot run here (the message says why)."""


@dataclass(frozen=True)
class ModelEntry:
    """One bundle as the Models dialog lists it."""

    name: str  # the manifest's name, else the folder name
    path: Path
    source: str  # "shipped" or "user"
    manifest: ModelManifest | None
    available: bool
    reason: str = ""  # why it is unavailable

    @property
    def weights(self) -> Path:
        return self.path / TORCHSCRIPT

    def to_json(self) -> dict[str, object]:
        m = self.manifest
        return {
            "name": self.name,
            "source": self.source,
            "available": self.available,
            "reason": self.reason or None,
            "version": m.version if m else None,
            "manufacturer": m.manufacturer if m else None,
            "intended_use": m.intended_use if m else None,
            "input_filter": m.input_filter.to_json() if m else None,
            "half_precision": m.half_precision if m else None,
            "requires_gpu": m.requires_gpu if m else None,
        }


def shipped_models_dir() -> Path:
    """``resources/models``: the bundles that ship with the app."""
    import resources

    return Path(resources.__file__).resolve().parent / "models"


def user_models_dir(setting: str = "") -> Path:
    """The user's models folder: the setting, else ``models`` in the app's data folder."""
    if setting:
        return Path(setting).expanduser()
    from app.settings import data_dir

    return data_dir() / "models"


def installed_torch_version() -> str:
    """The installed torch's version without importing it ("" when not installed)."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return ""


def _has_gpu() -> bool:
    from inference.devices import describe

    return bool(describe().gpu_name)


def check_bundle(
    path: Path,
    source: str,
    *,
    torch_version: str,
    has_gpu: Callable[[], bool] = _has_gpu,
) -> ModelEntry:
    """Read and check one bundle folder; never raises."""
    try:
        manifest = read_manifest(path)
    except BundleError as exc:
        return ModelEntry(path.name, path, source, None, False, f"bad manifest: {exc}")
    name = manifest.name

    def unavailable(reason: str) -> ModelEntry:
        return ModelEntry(name, path, source, manifest, False, reason)

    weights = path / TORCHSCRIPT
    if not weights.is_file() or weights.stat().st_size == 0:
        return unavailable(f"missing weights: no {TORCHSCRIPT.as_posix()}")
    if not zipfile.is_zipfile(weights):  # a TorchScript archive is a zip file
        return unavailable(f"missing weights: {TORCHSCRIPT.as_posix()} is not a TorchScript file")
    if not torch_version:
        return unavailable("torch is not installed (the full installer flavor has it)")
    if manifest.min_torch and version_tuple(torch_version) < version_tuple(manifest.min_torch):
        return unavailable(
            f"wrong torch: needs torch >= {manifest.min_torch}, this has {torch_version}"
        )
    if manifest.requires_gpu and not has_gpu():
        return unavailable("needs a GPU: no CUDA GPU on this machine")
    return ModelEntry(name, path, source, manifest, True)


class ModelRegistry:
    """Bundles in the shipped folder and the user's folder (a user bundle with the same
    name as a shipped one replaces it in the list)."""

    def __init__(
        self,
        folders: Sequence[tuple[Path, str]] | None = None,
        *,
        torch_version: str | None = None,
        has_gpu: Callable[[], bool] = _has_gpu,
    ) -> None:
        self.folders = list(folders) if folders is not None else [(shipped_models_dir(), "shipped")]
        self._torch_version = installed_torch_version() if torch_version is None else torch_version
        self._has_gpu = has_gpu
        self._gpu: bool | None = None
        self._entries: list[ModelEntry] | None = None

    @classmethod
    def from_settings(cls, models_folder: str = "") -> ModelRegistry:
        """Shipped bundles plus the user's models folder (setting ``models_folder``)."""
        return cls([(shipped_models_dir(), "shipped"), (user_models_dir(models_folder), "user")])

    def _gpu_cached(self) -> bool:
        if self._gpu is None:
            self._gpu = self._has_gpu()
        return self._gpu

    def refresh(self) -> list[ModelEntry]:
        by_name: dict[str, ModelEntry] = {}
        for folder, source in self.folders:
            for path in _bundle_dirs(folder):
                entry = check_bundle(
                    path, source, torch_version=self._torch_version, has_gpu=self._gpu_cached
                )
                if not entry.available:
                    log.info("model %s unavailable: %s", entry.name, entry.reason)
                by_name[entry.name] = entry
        self._entries = sorted(by_name.values(), key=lambda e: e.name.lower())
        return list(self._entries)

    def models(self) -> list[ModelEntry]:
        """Every bundle found, available or not (cached; ``refresh`` re-reads)."""
        return list(self._entries) if self._entries is not None else self.refresh()

    def get(self, name: str) -> ModelEntry:
        """The bundle named ``name``; raises ``ModelUnavailable`` if unknown or unusable."""
        for entry in self.models():
            if entry.name == name:
                if not entry.available:
                    raise ModelUnavailable(f"model {name!r} is unavailable: {entry.reason}")
                return entry
        known = ", ".join(e.name for e in self.models()) or "none"
        raise ModelUnavailable(f"no model named {name!r} (known: {known})")

    def default_for(self, modality: str, body_part: str = "") -> ModelEntry | None:
        """The first available model whose input filter accepts this modality and body part."""
        for entry in self.models():
            m = entry.manifest
            if not entry.available or m is None:
                continue
            f = m.input_filter
            if f.modalities and modality.upper() not in f.modalities:
                continue
            if f.body_parts and body_part and body_part.upper() not in f.body_parts:
                continue
            return entry
        return None


def _bundle_dirs(folder: Path) -> Iterable[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
