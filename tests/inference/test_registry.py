"""The registry lists good and broken bundles; a broken one is unavailable with its reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from inference.bundle import BundleError, parse_manifest
from inference.registry import ModelRegistry, ModelUnavailable, shipped_models_dir

SHIPPED = shipped_models_dir() / "ich_demo_ct"


def _copy(tmp: Path, name: str) -> Path:
    target = tmp / name
    shutil.copytree(SHIPPED, target)
    return target


def _edit(bundle: Path, change) -> None:  # type: ignore[no-untyped-def]
    path = bundle / "configs" / "metadata.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_shipped_demo_bundle_is_available_and_honest() -> None:
    registry = ModelRegistry()
    entry = registry.get("ich_demo_ct")
    m = entry.manifest
    assert entry.available and m is not None
    assert (
        "synthetic" in m.intended_use.lower() and "not for clinical use" in m.intended_use.lower()
    )
    assert m.input_filter.modalities == ("CT",) and "HEAD" in m.input_filter.body_parts
    assert entry.weights.stat().st_size < 5 * 2**20
    assert registry.default_for("CT", "HEAD") == entry
    assert registry.default_for("MR", "BRAIN") is None


def test_broken_bundles_stay_listed_with_their_reason(tmp_path: Path) -> None:
    user = tmp_path / "models"
    user.mkdir()
    # bad manifest: not JSON
    bad_json = _copy(user, "bad_json")
    (bad_json / "configs" / "metadata.json").write_text("{ not json")
    # bad manifest: a MONAI mandatory key missing
    no_key = _copy(user, "no_key")
    _edit(
        no_key,
        lambda d: (d.pop("network_data_format"), d["ai_review_companion"].update(name="no_key")),
    )
    # missing weights
    no_weights = _copy(user, "no_weights")
    _edit(no_weights, lambda d: d["ai_review_companion"].update(name="no_weights"))
    (no_weights / "models" / "model.ts").unlink()
    # weights that are not TorchScript
    junk = _copy(user, "junk_weights")
    _edit(junk, lambda d: d["ai_review_companion"].update(name="junk_weights"))
    (junk / "models" / "model.ts").write_bytes(b"not a zip")
    # needs a GPU
    gpu = _copy(user, "gpu_only")
    _edit(gpu, lambda d: d["ai_review_companion"].update(name="gpu_only", requires_gpu=True))
    # wrong torch
    future = _copy(user, "future_torch")
    _edit(future, lambda d: d["ai_review_companion"].update(name="future_torch", min_torch="99.0"))

    registry = ModelRegistry(
        [(shipped_models_dir(), "shipped"), (user, "user")], has_gpu=lambda: False
    )
    entries = {e.name: e for e in registry.models()}
    assert entries["ich_demo_ct"].available
    reasons = {name: e.reason for name, e in entries.items() if not e.available}
    assert (
        reasons["bad_json"].startswith("bad manifest") and "not valid JSON" in reasons["bad_json"]
    )
    assert "network_data_format" in reasons["no_key"]
    assert reasons["no_weights"].startswith("missing weights")
    assert "not a TorchScript file" in reasons["junk_weights"]
    assert reasons["gpu_only"].startswith("needs a GPU")
    assert reasons["future_torch"].startswith("wrong torch")
    with pytest.raises(ModelUnavailable, match="needs a GPU"):
        registry.get("gpu_only")
    with pytest.raises(ModelUnavailable, match="no model named"):
        registry.get("nope")
    # no torch at all
    no_torch = ModelRegistry([(shipped_models_dir(), "shipped")], torch_version="")
    assert "torch is not installed" in no_torch.models()[0].reason


def test_manifest_errors_name_the_key_and_value() -> None:
    data = json.loads((SHIPPED / "configs" / "metadata.json").read_text())
    data["ai_review_companion"]["urgency_rules"][0]["urgency"] = "soonish"
    with pytest.raises(BundleError, match="soonish"):
        parse_manifest(data)
    data = json.loads((SHIPPED / "configs" / "metadata.json").read_text())
    del data["network_data_format"]["inputs"]["image"]["spatial_shape"]
    with pytest.raises(BundleError, match="spatial_shape"):
        parse_manifest(data)


def test_the_app_side_of_inference_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, inference.service, inference.registry, inference.outputs, "
        "inference.autorun, inference.cli, inference.worker; "
        "inference.registry.ModelRegistry().models(); "
        "sys.exit('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr or "torch was imported"
