"""Subcommands of the lkdetect CLI, one module each (imported lazily by lkdetect.cli)."""

TTA_HELP = "test-time augmentation: average mirrored views x scales 0.9, 1, 1.1 (6 network passes per image)"
REFINE_HELP = (
    "detect again on a square box around the first keypoints, SIDE times their spread (default 3.5): every "
    "object reaches the network at the same scale; one more detection per image"
)
