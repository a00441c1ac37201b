"""Subcommands of the lkdetect CLI, one module each (imported lazily by lkdetect.cli)."""

TTA_HELP = "test-time augmentation: average mirrored views x scales 0.9, 1, 1.1 (6 network passes per image)"
