"""Evaluation tests: make the helper module ``evalfixtures`` (synthetic datasets in official layouts, fake
detectors) importable under pytest's importlib import mode. Seeding is the autouse fixture of tests/conftest.py."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
