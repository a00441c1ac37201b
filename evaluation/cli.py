"""The ``python -m evaluation.*`` aliases of the benchmark tools' ``lkdetect`` subcommands (train-cv, equivariance,
keypoint-parts): the same arguments, with out-of-range values reported as usage errors (exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence


def parse_alias(
    doc: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    check_arguments: Callable[[argparse.Namespace], None] | None = None,
    argv: Sequence[str] | None = None,
) -> argparse.Namespace:
    """Parse ``argv`` with a tool's ``add_arguments``; a ``ValueError`` of its ``check_arguments`` is a usage error."""
    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    add_arguments(ap)
    args = ap.parse_args(argv)
    if check_arguments is not None:
        try:
            check_arguments(args)
        except ValueError as e:
            ap.error(str(e))
    return args
