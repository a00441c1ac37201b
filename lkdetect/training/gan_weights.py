"""GAN release weights as lkdetect loads them (training pairs, the demo, the editor): one loader whose errors are
lkdetect's as well as gan's.

``gan`` imports nothing of lkdetect, so its :class:`gan.checkpoint.CheckpointError` cannot derive from
:class:`lkdetect.errors.CheckpointError`; :func:`load_gan` raises :class:`GANCheckpointError`, a subclass of both,
so ``except lkdetect.CheckpointError`` and ``except gan.CheckpointError`` each catch a broken GAN file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gan.checkpoint as gan_checkpoint
from gan.generator import Generator

from ..errors import CheckpointError


class GANCheckpointError(CheckpointError, gan_checkpoint.CheckpointError):
    """GAN weights that cannot be used (not safetensors, another format, tensors that do not fit, missing)."""


def load_gan(path: str | Path) -> tuple[Generator, dict[str, Any]]:
    """:func:`gan.checkpoint.load_generator`: (generator in eval mode, channels-last; its info dict).

    Raises:
        GANCheckpointError: a file that is not usable GAN weights (the message is gan's).
    """
    try:
        return gan_checkpoint.load_generator(path)
    except gan_checkpoint.CheckpointError as e:
        raise GANCheckpointError(*e.args) from e
