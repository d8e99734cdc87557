"""What the machine offers local inference: torch (full flavor only) and its GPU.

torch is imported here, lazily, and only when asked (DESIGN.md §2).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class InferenceDevice:
    torch_version: str  # "" when torch is not installed or cannot be imported
    gpu_name: str  # "" without a CUDA GPU
    gpu_memory_gib: float
    problem: str = ""  # why torch could not be imported, if it is installed


def describe() -> InferenceDevice:
    if importlib.util.find_spec("torch") is None:
        return InferenceDevice("", "", 0.0)
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken torch install is reported, not raised
        return InferenceDevice("", "", 0.0, problem=repr(exc))
    if not torch.cuda.is_available():
        return InferenceDevice(str(torch.__version__), "", 0.0)
    props = torch.cuda.get_device_properties(0)
    return InferenceDevice(str(torch.__version__), str(props.name), props.total_memory / 2**30)
