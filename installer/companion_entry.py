"""Entry point of the frozen (PyInstaller) companion: the same ``main`` as ``companion``."""

import multiprocessing
import sys

from app.main import main

if __name__ == "__main__":
    # A frozen app re-runs this script for every child process it spawns
    # (local inference workers): let multiprocessing take those over.
    multiprocessing.freeze_support()
    sys.exit(main())
