"""``python -m app`` runs the companion."""

import sys

from app.main import main

sys.exit(main())
