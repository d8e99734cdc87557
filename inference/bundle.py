"""A model packaged as a MONAI bundle, and the checks that decide whether it can run.

Layout (MONAI Bundle Specification)::

    NAME/configs/metadata.json   the manifest
    NAME/models/model.ts         TorchScript weights (what the runner loads)
    NAME/models/model.pt         state dict (the spec requires it; we do not read it)

``metadata.json`` holds the spec's mandatory keys (version, monai_version,
pytorch_version, numpy_version, optional_packages_version, task, description,
authors, copyright, network_data_format with its tensor format specifiers) and
the optional ``intended_use``. The spec allows user keys; ours is
``ai_review_companion``: the input filter (modality, body part, slice count),
preprocessing (intensity window, model spacing), the patch size the network was
trained on, the output threshold, the finding it reports and the urgency rules,
and whether half precision and a GPU are allowed / needed.

No torch here: reading and checking a bundle is cheap and runs in the UI process.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.domain import Algorithm, Code, Urgency
from app.errors import CompanionError

METADATA = Path("configs") / "metadata.json"
TORCHSCRIPT = Path("models") / "model.ts"
OUR_KEY = "ai_review_companion"

# The MONAI Bundle Specification's mandatory metadata.json keys.
MONAI_REQUIRED = (
    "version",
    "monai_version",
    "pytorch_version",
    "numpy_version",
    "optional_packages_version",
    "task",
    "description",
    "authors",
    "copyright",
    "network_data_format",
)
# ... and of every tensor format specifier under network_data_format inputs/outputs.
TENSOR_REQUIRED = (
    "type",
    "format",
    "num_channels",
    "spatial_shape",
    "dtype",
    "value_range",
    "is_patch_data",
    "channel_def",
)


class BundleError(CompanionError):
    """A model bundle is malformed (the message names the file, the key and the value)."""


@dataclass(frozen=True)
class UrgencyRule:
    """A finding at least ``min_volume_ml`` large (and at least ``min_certainty`` sure)
    gets ``urgency``; rules are tried in order, the first that matches wins."""

    urgency: Urgency
    min_volume_ml: float = 0.0
    min_certainty: float = 0.0


@dataclass(frozen=True)
class InputFilter:
    """Which series the model was made for. Empty tuples accept anything."""

    modalities: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    min_slices: int = 1
    needs_spacing: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "modality": list(self.modalities),
            "body_part": list(self.body_parts),
            "min_slices": self.min_slices,
        }


@dataclass(frozen=True)
class ModelManifest:
    """What ``metadata.json`` says, checked and typed."""

    name: str
    display_name: str
    version: str
    manufacturer: str
    authors: str
    task: str
    description: str
    intended_use: str
    pytorch_version: str
    input_filter: InputFilter
    patch_size: tuple[int, int, int]  # (z, y, x) voxels at ``spacing``
    spacing: tuple[float, float, float]  # (z, y, x) mm the network works at
    window: tuple[float, float]  # input values clipped to this range, scaled to 0..1
    threshold: float  # foreground probability
    finding: Code
    site: Code | None
    min_lesion_ml: float
    urgency_rules: tuple[UrgencyRule, ...]
    half_precision: bool
    requires_gpu: bool
    min_torch: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def algorithm(self) -> Algorithm:
        return Algorithm(self.display_name, self.version, self.manufacturer)

    def urgency_for(self, volume_ml: float, certainty: float) -> Urgency:
        for rule in self.urgency_rules:
            if volume_ml >= rule.min_volume_ml and certainty >= rule.min_certainty:
                return rule.urgency
        return Urgency.ROUTINE


def _need(data: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in data:
        raise BundleError(f"{where}: missing key {key!r}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind in (int, float):
        raise BundleError(f"{where}: {key!r} has the wrong type, got {value!r}")
    return value


def _code(data: Any, where: str) -> Code:
    if not isinstance(data, dict):
        raise BundleError(f"{where}: a code must be an object, got {data!r}")
    try:
        return Code(str(data["code"]), str(data["scheme"]), str(data["meaning"]))
    except KeyError as exc:
        raise BundleError(f"{where}: a code lacks {exc}") from exc


def _triple(value: Any, where: str, kind: type) -> tuple[Any, Any, Any]:
    if not isinstance(value, list) or len(value) != 3:
        raise BundleError(f"{where}: expected a list of 3 numbers, got {value!r}")
    try:
        out = tuple(kind(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{where}: expected numbers, got {value!r}") from exc
    if any(v <= 0 for v in out):
        raise BundleError(f"{where}: values must be positive, got {value!r}")
    return out[0], out[1], out[2]


def parse_manifest(data: Any, where: str = "metadata.json") -> ModelManifest:
    """Check a parsed ``metadata.json`` against the MONAI spec and our key; typed manifest.

    Raises ``BundleError`` naming the key and the value."""
    if not isinstance(data, dict):
        raise BundleError(f"{where}: must hold a JSON object")
    for key in MONAI_REQUIRED:
        if key not in data:
            raise BundleError(f"{where}: missing MONAI bundle key {key!r}")
    ndf = _need(data, "network_data_format", where, dict)
    for part in ("inputs", "outputs"):
        tensors = _need(ndf, part, f"{where} network_data_format", dict)
        if not tensors:
            raise BundleError(f"{where}: network_data_format.{part} is empty")
        for name, spec in tensors.items():
            if not isinstance(spec, dict):
                raise BundleError(f"{where}: {part}.{name} must be an object")
            for key in TENSOR_REQUIRED:
                if key not in spec:
                    raise BundleError(f"{where}: {part}.{name} lacks {key!r}")
    ours = _need(data, OUR_KEY, where, dict)
    w = f"{where} {OUR_KEY}"
    flt = _need(ours, "input_filter", w, dict)
    window = _need(ours, "intensity_window", w, list)
    if len(window) != 2 or not all(isinstance(v, int | float) for v in window):
        raise BundleError(f"{w}: intensity_window must be [low, high], got {window!r}")
    if window[1] <= window[0]:
        raise BundleError(f"{w}: intensity_window must rise, got {window!r}")
    rules = []
    for n, rule in enumerate(_need(ours, "urgency_rules", w, list)):
        if not isinstance(rule, dict):
            raise BundleError(f"{w}: urgency_rules[{n}] must be an object, got {rule!r}")
        try:
            urgency = Urgency[str(rule.get("urgency", "")).upper()]
        except KeyError:
            raise BundleError(
                f"{w}: urgency_rules[{n}].urgency must be routine, urgent or critical, "
                f"got {rule.get('urgency')!r}"
            ) from None
        rules.append(
            UrgencyRule(
                urgency,
                float(rule.get("min_volume_ml", 0.0)),
                float(rule.get("min_certainty", 0.0)),
            )
        )
    threshold = float(_need(ours, "threshold", w, (int, float)))
    if not 0.0 < threshold < 1.0:
        raise BundleError(f"{w}: threshold must be within 0..1, got {threshold!r}")
    name = str(_need(ours, "name", w, str))
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise BundleError(f"{w}: name must be 1-64 letters, digits, '_', '.', '-', got {name!r}")
    return ModelManifest(
        name=name,
        display_name=str(ours.get("display_name", name))[:64],
        version=str(data["version"]),
        manufacturer=str(_need(ours, "manufacturer", w, str)),
        authors=str(data["authors"]),
        task=str(data["task"]),
        description=str(data["description"]),
        intended_use=str(data.get("intended_use", "")),
        pytorch_version=str(data["pytorch_version"]),
        input_filter=InputFilter(
            modalities=tuple(str(m).upper() for m in flt.get("modality", [])),
            body_parts=tuple(str(b).upper() for b in flt.get("body_part", [])),
            min_slices=int(flt.get("min_slices", 1)),
            needs_spacing=bool(flt.get("needs_spacing", True)),
        ),
        patch_size=_triple(_need(ours, "patch_size", w, list), f"{w} patch_size", int),
        spacing=_triple(_need(ours, "spacing_mm", w, list), f"{w} spacing_mm", float),
        window=(float(window[0]), float(window[1])),
        threshold=threshold,
        finding=_code(_need(ours, "finding", w, dict), f"{w} finding"),
        site=_code(ours["site"], f"{w} site") if ours.get("site") else None,
        min_lesion_ml=float(ours.get("min_lesion_ml", 0.0)),
        urgency_rules=tuple(rules),
        half_precision=bool(ours.get("half_precision", False)),
        requires_gpu=bool(ours.get("requires_gpu", False)),
        min_torch=str(ours.get("min_torch", "")),
        raw=data,
    )


def read_manifest(bundle: Path) -> ModelManifest:
    """Read and check ``bundle/configs/metadata.json``. Raises ``BundleError``."""
    path = bundle / METADATA
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{bundle.name}: no {METADATA.as_posix()}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{bundle.name}: {METADATA.as_posix()} is not valid JSON: {exc}") from exc
    return parse_manifest(data, f"{bundle.name}/{METADATA.as_posix()}")


def version_tuple(text: str) -> tuple[int, ...]:
    """``"2.13.0+cpu"`` -> (2, 13, 0): the numeric release part."""
    out = []
    for part in text.split("+")[0].split("."):
        digits = re.match(r"\d+", part)
        if not digits:
            break
        out.append(int(digits.group()))
    return tuple(out)
