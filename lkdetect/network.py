"""The keypoint detector network: a timm backbone, a small heatmap head and a spatial soft-argmax.

Integral regression (Sun et al., "Integral Human Pose Regression", ECCV 2018): the head predicts one heatmap
per keypoint, a spatial softmax turns each into a probability map and its expectation (soft-argmax) is the
keypoint, so coordinates are sub-pixel and trained directly with an L1 loss. The network takes RGB images in
[0, 1] and normalises them itself with the mean/std of the weights' metadata, so a caller (and an ONNX export)
never repeats the preprocessing constants.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Backbone(nn.Module):
    """A timm classification model cut after the stage of output stride ``stride``.

    Uses timm's ``prune_intermediate_layers`` / ``forward_intermediates``, so the later stages, the final norm
    and the classifier are dropped and cost nothing.

    Args:
        name: any timm model name with ``forward_intermediates`` (``resnet18``, ``mobilenetv3_large_100``, ...),
            built with ``pretrained=False``.
        stride: the wanted output stride (input pixels per feature cell), e.g. 4, 8 or 16.
    """

    def __init__(self, name: str, stride: int):
        super().__init__()
        import timm

        try:
            model = timm.create_model(name, pretrained=False)
        except RuntimeError as e:  # timm's "Unknown model"
            raise ValueError(f"unknown timm backbone {name!r}: {e}") from e
        reductions = [int(f["reduction"]) for f in model.feature_info]
        if stride not in reductions:
            raise ValueError(f"backbone {name!r} has output strides {reductions}, not {stride}")
        self.index = reductions.index(stride)
        self.channels = int(model.feature_info[self.index]["num_chs"])
        model.prune_intermediate_layers(indices=[self.index], prune_norm=True, prune_head=True)
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, C, H / stride, W / stride) features."""
        return self.model.forward_intermediates(x, indices=[self.index], intermediates_only=True)[-1]


def soft_argmax(
    logits: torch.Tensor, input_hw: Sequence[int], temperature: float = 1.0, radius: float = 1.5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Spatial softmax, its expectation and a confidence, in input-image pixels.

    Heatmap cell (i, j) of an (h, w) map covers the input pixels around x = (j + 0.5) * W / w - 0.5,
    y = (i + 0.5) * H / h - 0.5 (pixel centres at integer coordinates, as an ``align_corners=False`` resize).

    Args:
        logits: (B, K, h, w) heatmap logits (computed in float32, or float64 if given).
        input_hw: (H, W) of the network input the heatmaps belong to.
        temperature: softmax temperature (logits are divided by it).
        radius: confidence radius in heatmap cells.

    Returns:
        xy: (B, K, 2) expected (x, y) in input pixels.
        scores: (B, K) in [0, 1], the probability mass within ``radius`` cells of ``xy``; 1 for a sharp,
            unimodal heatmap, low for a flat or multi-modal one.
        prob: (B, K, h, w) the probability maps (each sums to 1).
    """
    b, k, h, w = logits.shape
    sy, sx = input_hw[0] / h, input_hw[1] / w
    logits = logits if logits.dtype == torch.float64 else logits.float()
    prob = torch.softmax(logits.flatten(2) / temperature, dim=-1).view(b, k, h, w)
    gx = (torch.arange(w, device=logits.device, dtype=prob.dtype) + 0.5) * sx - 0.5
    gy = (torch.arange(h, device=logits.device, dtype=prob.dtype) + 0.5) * sy - 0.5
    x = (prob.sum(2) * gx).sum(-1)  # marginal over rows, then expectation over columns
    y = (prob.sum(3) * gy).sum(-1)
    xy = torch.stack((x, y), dim=-1)
    # Distance of every cell to the expectation, measured in cells.
    dx = (gx.view(1, 1, 1, w) - x.view(b, k, 1, 1)) / sx
    dy = (gy.view(1, 1, h, 1) - y.view(b, k, 1, 1)) / sy
    near = (dx.square() + dy.square() <= radius * radius).to(prob.dtype)
    scores = (prob * near).flatten(2).sum(-1).clamp(0, 1)
    return xy, scores, prob


class KeypointNet(nn.Module):
    """Backbone + heatmap head + soft-argmax: (B, 3, H, W) RGB in [0, 1] -> K keypoints in input pixels.

    Args:
        backbone: timm model name (built with ``pretrained=False``).
        num_keypoints: K.
        input_size: (H, W) the network is trained at; recorded, the forward pass accepts any size.
        stride: backbone output stride (feature cell = ``stride`` input pixels).
        head_channels: width of the head's 3x3 convs.
        head_depth: number of 3x3 conv + BN + ReLU layers in the head.
        upsample: bilinear up-sampling factor inside the head (heatmap stride = stride / upsample).
        temperature: fixed softmax temperature (the head learns its own logit scale).
        confidence_radius: radius in heatmap cells of the confidence mass (see :func:`soft_argmax`).
        mean: per-channel RGB mean subtracted inside the network.
        std: per-channel RGB standard deviation divided inside the network.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        num_keypoints: int = 10,
        input_size: Sequence[int] = (64, 64),
        stride: int = 8,
        head_channels: int = 64,
        head_depth: int = 2,
        upsample: int = 2,
        temperature: float = 1.0,
        confidence_radius: float = 1.5,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ):
        super().__init__()
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1, got {num_keypoints}")
        if upsample < 1 or stride % upsample:
            raise ValueError(f"upsample must be >= 1 and divide stride {stride}, got {upsample}")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std need 3 values (RGB), std > 0; got {mean}, {std}")
        self.config: dict[str, Any] = dict(
            backbone=backbone,
            num_keypoints=num_keypoints,
            input_size=[int(s) for s in input_size],
            stride=stride,
            head_channels=head_channels,
            head_depth=head_depth,
            upsample=upsample,
            temperature=temperature,
            confidence_radius=confidence_radius,
        )
        self.backbone = Backbone(backbone, stride)
        c = self.backbone.channels
        layers: list[nn.Module] = []
        for i in range(head_depth):
            if i == head_depth - 1 and upsample > 1:
                layers.append(nn.Upsample(scale_factor=upsample, mode="bilinear", align_corners=False))
            layers += [
                nn.Conv2d(c, head_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(head_channels),
                nn.ReLU(inplace=True),
            ]
            c = head_channels
        if head_depth == 0 and upsample > 1:
            layers.append(nn.Upsample(scale_factor=upsample, mode="bilinear", align_corners=False))
        self.head = nn.Sequential(*layers)
        self.to_heatmaps = nn.Conv2d(c, num_keypoints, 1)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    @property
    def num_keypoints(self) -> int:
        return self.config["num_keypoints"]

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) the network was built for."""
        h, w = self.config["input_size"]
        return h, w

    @property
    def heatmap_stride(self) -> int:
        return self.config["stride"] // self.config["upsample"]

    def normalization(self) -> dict[str, list[float]]:
        """The mean/std the network applies, for the weights' metadata."""
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}

    def heatmap_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, K, H / heatmap_stride, W / heatmap_stride) logits."""
        x = (images - self.mean) / self.std
        features = self.backbone(x)
        return self.to_heatmaps(self.head(features))

    def decode(self, logits: torch.Tensor, input_hw: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmap logits -> (xy (B, K, 2) in input pixels, scores (B, K) in [0, 1])."""
        xy, scores, _ = soft_argmax(logits, input_hw, self.config["temperature"], self.config["confidence_radius"])
        return xy, scores

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Detect keypoints.

        Args:
            images: (B, 3, H, W) float RGB in [0, 1] (normally H, W = ``input_size``).

        Returns:
            xy: (B, K, 2) float32 (x, y) in network-input pixels, pixel centres at integer coordinates.
            scores: (B, K) float32 confidences in [0, 1].
        """
        return self.decode(self.heatmap_logits(images), images.shape[-2:])


# The keys of ``KeypointNet.config`` (stored in the weights' metadata): the constructor's arguments but the
# normalisation, which the metadata keeps apart. build_network and the training config derive from this.
NETWORK_KEYS: tuple[str, ...] = tuple(p for p in inspect.signature(KeypointNet).parameters if p not in ("mean", "std"))


def build_network(
    config: dict[str, Any], mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> KeypointNet:
    """Rebuild a :class:`KeypointNet` from its ``config`` dict (as stored in the weights' metadata)."""
    known = set(NETWORK_KEYS)
    unknown = set(config) - known
    if unknown:
        raise KeyError(f"unknown network keys {sorted(unknown)}; known: {sorted(known)}")
    return KeypointNet(**config, mean=mean, std=std)


def heatmap_cross_entropy(
    logits: torch.Tensor,
    target_xy: torch.Tensor,
    sigma: float,
    temperature: float = 1.0,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy between the softmax heatmaps and a normalised Gaussian around each target.

    Args:
        logits: (B, K, h, w) heatmap logits of an input of size (H, W) = (h, w) * stride.
        target_xy: (B, K, 2) targets (x, y) in heatmap cells, cell centres at integers.
        sigma: Gaussian standard deviation in heatmap cells.
        temperature: the softmax temperature used for decoding.
        weight: optional (B, K) per-keypoint weights (e.g. 0 for keypoints outside the image).

    Returns:
        scalar mean loss.
    """
    b, k, h, w = logits.shape
    gx = torch.arange(w, device=logits.device, dtype=torch.float32)
    gy = torch.arange(h, device=logits.device, dtype=torch.float32)
    d2 = (gx.view(1, 1, 1, w) - target_xy[..., 0, None, None]).square() + (
        gy.view(1, 1, h, 1) - target_xy[..., 1, None, None]
    ).square()
    target = torch.softmax((-d2 / (2 * sigma * sigma)).flatten(2), dim=-1)
    logp = torch.log_softmax(logits.float().flatten(2) / temperature, dim=-1)
    loss = -(target * logp).sum(-1)  # (B, K)
    if weight is None:
        return loss.mean()
    return (loss * weight).sum() / weight.sum().clamp_min(1.0)


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every eval-mode BatchNorm that directly follows a Conv2d into that conv, in place; returns the count.

    Inference only (the statistics are frozen into the weights). A pair is a ``Conv2d`` child followed, in
    registration order and skipping ``Identity`` placeholders, by a ``BatchNorm2d`` child of the same width, the
    order in which timm's blocks and our head apply them. timm's ``BatchNormAct2d`` keeps its activation:
    it is replaced by that activation, a plain BatchNorm by ``Identity``. Callers check the result against
    the unfolded network (see :func:`fold_for_inference`), since registration order is a convention, not a
    guarantee.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for parent in list(module.modules()):
        children = [(n, c) for n, c in parent.named_children() if not isinstance(c, nn.Identity)]
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if not (
                type(conv) is nn.Conv2d
                and isinstance(bn, nn.BatchNorm2d)
                and bn.track_running_stats
                and bn.running_mean is not None
                and bn.num_features == conv.out_channels
            ):
                continue
            setattr(parent, conv_name, fuse_conv_bn_eval(conv.eval(), bn.eval()))
            act = getattr(bn, "act", None)
            setattr(parent, bn_name, act if isinstance(act, nn.Module) else nn.Identity())
            folded += 1
    return folded


def fold_for_inference(network: KeypointNet, atol: float = 1e-3) -> KeypointNet:
    """A copy of ``network`` with its BatchNorms folded into convolutions (fewer ops: faster single images).

    The copy is checked against the original on a random batch; when the keypoints differ by more than
    ``atol`` input pixels (a block whose forward order differs from its registration order), the unfolded
    network is returned instead, with a warning.
    """
    import copy

    folded = copy.deepcopy(network).eval()
    n = fold_batchnorm(folded)
    if n == 0:
        return network
    h, w = network.input_size
    device = next(network.parameters()).device
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.inference_mode():
        ref, out = network.eval()(x), folded(x)
    err = max(float((ref[0] - out[0]).abs().max()), float((ref[1] - out[1]).abs().max()))
    if not err <= atol:
        log.warning("folding BatchNorm changed the output by %.3g (> %.3g): using the unfolded network", err, atol)
        return network
    return folded


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NETWORK_KEYS",
    "Backbone",
    "KeypointNet",
    "build_network",
    "count_parameters",
    "fold_batchnorm",
    "fold_for_inference",
    "heatmap_cross_entropy",
    "soft_argmax",
]
