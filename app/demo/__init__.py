"""Synthetic studies and AI results for the offline demo and tests (deterministic, seeded).

``generate_demo_set`` builds the images and AI result SRs; ``ensure_demo_archive``
seeds the embedded archive on first start; ``seed_target`` seeds a folder or a
DICOMweb server (``companion seed-demo``).
"""

from app.demo.generate import DemoSet, DemoStudy, generate_demo_set
from app.demo.seed import ensure_demo_archive, seed_archive, seed_target

__all__ = [
    "DemoSet",
    "DemoStudy",
    "ensure_demo_archive",
    "generate_demo_set",
    "seed_archive",
    "seed_target",
]
