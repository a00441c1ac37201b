"""Editor tests: make the helper module ``editorfixtures`` importable under pytest's importlib import mode, and
share one server on the shipped faces GAN per test module."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
