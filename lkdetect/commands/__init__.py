"""Subcommands of the lkdetect CLI, one module each (imported lazily by lkdetect.cli)."""
