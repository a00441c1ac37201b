"""``lkdetect editor``: edit generated images in the browser through their latent keypoints.

A local web app (stdlib HTTP server, static files shipped in ``static/``, nothing fetched from outside) over a
pure state model (:mod:`lkdetect.editor.session`: a seeded sample plus a list of :mod:`gan.edit` operations,
replayed exactly). An edit exported from the page renders to the same pixels with::

    from lkdetect.editor import render_edit
    image = render_edit(Path("edit.json"))  # (3, R, R) in [0, 1]; gan.viz.to_pil(image) is the exported PNG

This is a GAN path: ``gan`` and ``torch`` load only when a function here is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["render_edit"]


def render_edit(edit: Any, gan: Any = None) -> torch.Tensor:
    """Render an exported edit; see :func:`lkdetect.editor.session.render_edit`."""
    from .session import render_edit as _render_edit

    return _render_edit(edit, gan)
