"""The distribution ships every package: a subpackage missing from pyproject.toml works in an editable install (and
so in the tests) but is absent from a wheel, where its command fails with ModuleNotFoundError."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = (ROOT / "pyproject.toml").read_text()


def test_every_package_of_the_three_goes_into_the_wheel():
    # tomllib is 3.11+; the section's include array of strings reads as a Python list
    section = re.search(r"^\[tool\.setuptools\.packages\.find\].*?^include = (\[.*?\])$", PYPROJECT, re.M | re.S)
    assert section, "pyproject.toml lists no [tool.setuptools.packages.find] include"
    include = ast.literal_eval(section.group(1))
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("lkdetect", "gan", "evaluation")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert "lkdetect.learn" in on_disk
    # setuptools' find matches each package name against the include patterns with fnmatch
    assert {name for name in on_disk if not any(fnmatch.fnmatchcase(name, pat) for pat in include)} == set()
