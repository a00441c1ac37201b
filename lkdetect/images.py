"""Turning user images into network input, and network output back into image pixels.

Accepted images (all RGB unless ``bgr=True`` is passed for numpy arrays and tensors, e.g. OpenCV frames):

- a file path (``str`` or ``pathlib.Path``), decoded with PIL;
- a PIL image: 8-bit modes (RGB, RGBA, L, LA, P, 1, CMYK, ...) converted to RGB (alpha dropped); 16-bit grayscale
  (I;16, or mode I from a PNG) scaled by 1/65535; float (F) in [0, 1]; other mode I images are refused, their range
  being unknown;
- a numpy array: HxWx3 (RGB), HxW (grayscale), HxWx1, HxWx4 (alpha dropped); ``uint8`` in [0, 255], ``uint16`` in
  [0, 65535] (16-bit images) or float in [0, 1];
- a torch tensor, channels first: 3xHxW, 1xHxW, 4xHxW (alpha dropped) or HxW; ``uint8`` or float in [0, 1].

Coordinates: pixel centres at integer coordinates, (x, y). A region (box) of w x h pixels resized to S_w x S_h
network pixels maps back exactly by ``x_in = x0 + (x_net + 0.5) * w / S_w - 0.5`` (the ``align_corners=False``
convention of the bilinear resize used here).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import check_file

log = logging.getLogger(__name__)

ImageLike = Any  # str | Path | PIL.Image.Image | np.ndarray | torch.Tensor
KINDS = "a file path, a PIL image, a numpy array (HxWx3 RGB, HxW, HxWx4) or a torch tensor (3xHxW, HxW)"
MIN_SIDE = 8  # a region smaller than this many pixels on a side is detected on, with a warning


def to_tensor(image: ImageLike, bgr: bool = False, what: str = "image") -> torch.Tensor:
    """Convert one image to a (3, H, W) float32 RGB tensor in [0, 1].

    Args:
        image: see the module docstring for the accepted kinds.
        bgr: the channels of a numpy array or tensor are in BGR(A) order (OpenCV); ignored for files and PIL.
        what: how errors name the image (``"images[3]"`` in a batch).

    Raises:
        TypeError: an unsupported type or dtype.
        ValueError: wrong dimensions or channels, empty, non-finite or float values outside [0, 1], an
            undecodable file, a directory, or a PIL mode without a known value range.
        FileNotFoundError: a path that does not exist.
    """
    if image is None:
        raise TypeError(f"{what}: expected {KINDS}, got None")
    if isinstance(image, (str, Path)):
        return _open(Path(image), what)
    if isinstance(image, torch.Tensor):
        return _from_tensor(image, bgr, what)
    if isinstance(image, np.ndarray):
        return _from_tensor(_array_to_chw(image, what), bgr, what)
    from PIL import Image

    if isinstance(image, Image.Image):
        return _from_pil(image, what)
    raise TypeError(f"{what}: expected {KINDS}, got {type(image).__name__}")


def _open(path: Path, what: str) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    check_file(path, f"{what}: image file")
    try:
        with Image.open(path) as im:
            im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"{what}: cannot decode image file {path}: {e}") from e
    return _from_pil(im, what)  # the pixels are loaded: converting needs no open file


def _from_pil(im: Any, what: str = "image") -> torch.Tensor:
    """A PIL image of any mode -> (3, H, W) float32 RGB in [0, 1] (see the module docstring for the modes)."""
    if im.width == 0 or im.height == 0:
        raise ValueError(f"{what}: expected a non-empty image, got a PIL image of size {im.width}x{im.height}")
    if im.mode.startswith("I;16") or (im.mode == "I" and im.format == "PNG"):  # PNG stores at most 16-bit grey
        gray = torch.from_numpy(np.asarray(im).astype(np.float32) / 65535)
        return _from_tensor(gray, False, what)
    if im.mode == "F":  # float: the [0, 1] range of float arrays applies
        return _from_tensor(torch.from_numpy(np.array(im, dtype=np.float32)), False, what)
    if im.mode in ("I", "I;32", "I;32B", "I;32L"):
        raise ValueError(
            f"{what}: a PIL image of mode {im.mode} (32-bit integers) has no known value range; convert it to 8-bit "
            "(im.convert('L') clips at 255), or pass a float array scaled to [0, 1]"
        )
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")  # the palette's transparency: to RGBA first (PIL warns otherwise), alpha dropped
    try:
        rgb = im.convert("RGB")
    except ValueError as e:
        raise ValueError(f"{what}: cannot convert a PIL image of mode {im.mode} to RGB: {e}") from e
    arr = np.asarray(rgb, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255)


def _array_to_chw(arr: np.ndarray, what: str) -> torch.Tensor:
    if arr.ndim == 3 and arr.shape[-1] > 4 and arr.shape[0] in (1, 3, 4):
        raise ValueError(
            f"{what}: numpy images are HxWxC (channels last); got shape {arr.shape}, which looks "
            "channels-first: pass arr.transpose(1, 2, 0)"
        )
    if arr.ndim not in (2, 3):
        raise ValueError(f"{what}: expected a numpy array HxW, HxWx1, HxWx3 or HxWx4, got shape {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] not in (1, 3, 4):  # said here, in the caller's HxWxC order
        raise ValueError(f"{what}: expected an image with 1, 3 or 4 channels (HxWxC array), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{what}: expected a non-empty image, got shape {arr.shape}")
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2:  # 16-bit (e.g. cv2.IMREAD_UNCHANGED): all of 0..65535
        arr = arr.astype(np.float32) / 65535
    elif arr.dtype != np.uint8 and arr.dtype.kind != "f":
        raise TypeError(
            f"{what}: expected uint8, uint16 or float (in [0, 1]) pixels, got {arr.dtype} "
            "(convert 0..255 integers with .astype(np.uint8))"
        )
    if arr.ndim == 3:
        arr = arr.transpose(2, 0, 1)
    arr = np.ascontiguousarray(arr)
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())  # torch warns on read-only memory


def _from_tensor(t: torch.Tensor, bgr: bool, what: str) -> torch.Tensor:
    if t.ndim == 3 and t.shape[0] > 4 and t.shape[-1] in (1, 3, 4):
        raise ValueError(
            f"{what}: tensors are channels-first (CxHxW); got shape {tuple(t.shape)}, which looks "
            "HxWxC: pass t.permute(2, 0, 1)"
        )
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
        raise ValueError(
            f"{what}: expected an image with 1, 3 or 4 channels (CxHxW tensor or HxWxC array), "
            f"got shape {tuple(t.shape)}"
        )
    if t.shape[1] == 0 or t.shape[2] == 0:
        raise ValueError(f"{what}: expected a non-empty image, got shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        t = t.float().div_(255)
    elif t.dtype.is_floating_point:
        t = t.detach().float()
        lo, hi = float(t.min()), float(t.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"{what}: expected finite values, got NaN or inf")
        if lo < 0 or hi > 1:
            raise ValueError(
                f"{what}: float images must be in [0, 1], got values in [{lo:.4g}, {hi:.4g}] "
                "(divide 0..255 images by 255, or pass uint8)"
            )
    else:
        raise TypeError(
            f"{what}: expected uint8 or float (in [0, 1]) pixels, got {t.dtype} "
            "(convert 0..255 integers with .astype(np.uint8))"
        )
    t = t.cpu()
    if t.shape[0] == 1:
        return t.expand(3, -1, -1).contiguous()
    t = t[:3]  # drop alpha
    return t.flip(0).contiguous() if bgr else t.contiguous()


def parse_box(box: Sequence[float], what: str = "box") -> tuple[int, int, int, int]:
    """Check an (x, y, w, h) box and round it to whole pixels: columns x .. x + w - 1, rows y .. y + h - 1."""
    if isinstance(box, (str, bytes)) or not hasattr(box, "__len__") or len(box) != 4:
        raise ValueError(f"{what}: expected (x, y, w, h), got {box!r}")
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what}: expected 4 numbers (x, y, w, h), got {box!r}") from e
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ValueError(f"{what}: expected finite numbers, got {box!r}")
    x0, y0, wi, hi = round(x), round(y), round(w), round(h)
    if wi < 1 or hi < 1:
        raise ValueError(f"{what}: expected width and height >= 1 pixel, got {box!r}")
    return x0, y0, wi, hi


def overlaps(region: tuple[int, int, int, int], width: int, height: int) -> bool:
    """Whether a whole-pixel (x, y, w, h) region shares at least one pixel with a ``width`` x ``height`` image."""
    x, y, w, h = region
    return x < width and y < height and x + w > 0 and y + h > 0


def crop(image: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    """Crop (3, H, W) to the (x, y, w, h) box; parts outside the image are zero (black)."""
    x0, y0, w, h = box
    _, H, W = image.shape
    if x0 == 0 and y0 == 0 and w == W and h == H:
        return image
    out = image.new_zeros(3, h, w)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if sx1 > sx0 and sy1 > sy0:
        out[:, sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[:, sy0:sy1, sx0:sx1]
    return out


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (3, h, w) -> (3, *size), anti-aliased when shrinking, ``align_corners=False``."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    out = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return out.clamp_(0, 1)


def crop_turned(
    image: torch.Tensor, centre: Sequence[float], side: float, rotation: np.ndarray, size: tuple[int, int]
) -> torch.Tensor:
    """A square of ``side`` image pixels centred on ``centre`` (x, y; pixel centres at integers), turned by the 2x2
    ``rotation``, resampled to ``size`` (S_h, S_w); outside the image is black.

    Network pixel (x, y) shows image point ``centre + rotation @ u`` with ``u = ((x + 0.5) side / S_w - side / 2,
    (y + 0.5) side / S_h - side / 2)`` (:func:`from_turned` maps keypoints back); with the identity it is the
    box crop and resize of :func:`crop` / :func:`resize` up to whole-pixel rounding. The square's bounding box is
    cropped and shrunk (anti-aliased) to about the network's pixel size first, then sampled bilinearly.
    """
    sh, sw = size
    rot = np.asarray(rotation, dtype=np.float64)
    cx, cy = float(centre[0]), float(centre[1])
    half = side / 2 * (abs(rot[0, 0]) + abs(rot[0, 1])) + 1.0  # half the bounding square, a pixel of margin
    x0, y0 = math.floor(cx - half + 0.5), math.floor(cy - half + 0.5)
    n = math.ceil(cx + half - 0.5) - x0 + 1
    m = math.ceil(cy + half - 0.5) - y0 + 1
    patch = crop(image, (x0, y0, n, m))
    pn, pm = max(1, min(n, math.ceil(n * sw / side))), max(1, min(m, math.ceil(m * sh / side)))
    patch = resize(patch, (pm, pn))
    gx = (np.arange(sw) + 0.5) * side / sw - side / 2
    gy = (np.arange(sh) + 0.5) * side / sh - side / 2
    u = np.stack(np.meshgrid(gx, gy), -1)  # (S_h, S_w, 2) offsets from the centre, box axes
    q = u @ rot.T + (cx, cy)  # image pixels
    r = (q - (x0, y0) + 0.5) * (pn / n, pm / m) - 0.5  # patch pixels
    grid = (2 * r + 1) / (pn, pm) - 1
    g = torch.from_numpy(grid).to(patch)[None]
    out = F.grid_sample(patch[None], g, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    return out.clamp_(0, 1)


def from_turned(
    xy: np.ndarray, centres: np.ndarray, sides: np.ndarray, rotations: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """Map (B, K, 2) network-input (x, y) on :func:`crop_turned` squares (centres (B, 2), sides (B,), rotations
    (B, 2, 2)) back to image pixels."""
    sh, sw = size
    scale = np.stack((sides / sw, sides / sh), -1)[:, None, :]
    u = (np.asarray(xy, dtype=np.float64) + 0.5) * scale - sides[:, None, None] / 2
    return np.einsum("bij,bkj->bki", rotations, u) + centres[:, None, :]


def load_region(
    image: ImageLike, box: Sequence[float] | None = None, bgr: bool = False, what: str = "image"
) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Image -> ((3, H, W) float32 RGB in [0, 1], the (x, y, w, h) region to detect on: the box, or all of it).

    A box may reach outside the image (that part is padded black) but must overlap it: a box wholly outside
    raises ``ValueError`` rather than returning keypoints of a black square.
    """
    t = to_tensor(image, bgr=bgr, what=what)
    H, W = t.shape[1:]
    if box is None:
        region = (0, 0, W, H)
    else:
        region = parse_box(box, what=f"{what} box")
        if not overlaps(region, W, H):
            raise ValueError(
                f"{what} box: {tuple(box)!r} lies wholly outside the {W}x{H} image (x, y, w, h in image pixels)"
            )
    if min(region[2:]) < MIN_SIDE:
        kind = "image" if box is None else "box"
        log.warning(
            "%s: detecting on a %dx%d %s, smaller than %d px on a side: its keypoints carry little information",
            what,
            region[2],
            region[3],
            kind,
            MIN_SIDE,
        )
    return t, region


def to_image_coordinates(xy: np.ndarray, regions: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Map (B, K, 2) network-input (x, y) back to image pixels of each (x, y, w, h) region (B, 4)."""
    sh, sw = size
    regions = regions.astype(np.float64)
    scale = np.stack((regions[:, 2] / sw, regions[:, 3] / sh), axis=-1)[:, None, :]
    return regions[:, None, :2] + (xy + 0.5) * scale - 0.5
