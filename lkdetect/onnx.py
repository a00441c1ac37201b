"""ONNX deployment: export a detector to one self-describing ``.onnx`` file and run it with onnxruntime.

The graph takes ``images`` (N, 3, H, W) float32 RGB in [0, 1] (N dynamic; H, W fixed to the weights' input size)
and returns ``keypoints`` (N, K, 2) float32 (x, y) in model-input pixels, pixel centres at integer coordinates, and
``scores`` (N, K) float32 in [0, 1]. The mean/std normalisation and the soft-argmax are inside the graph, so a
deployment only resizes images to H x W. The weights' metadata travels in the model's ``metadata_props``
(``format``, K, input size, keypoint names, coordinate convention, colour order, lkdetect version, the source
weights' sha256 and the full metadata as JSON), which :class:`OnnxDetector` reads and checks.

Exporter: ``torch.onnx.export(..., dynamo=False)``, the TorchScript tracer. With torch 2.14 and timm's
``forward_intermediates`` it exports in well under a second at opset 17 with only standard ONNX ops. The
``dynamo=True`` exporter (torch's default since 2.9) needs the ``onnxscript`` package, which lkdetect does not
depend on; with it installed it does trace the network (a smaller graph, no shape arithmetic) but takes ~40x longer,
emits opset 18 and fails to convert down to 17. The tracer's deprecation warning is silenced here.

``onnx`` and ``onnxruntime`` are imported inside the functions, so ``import lkdetect`` never loads them.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .base import BaseDetector
from .errors import CheckpointError
from .weights import COLOR_ORDER, COORDINATES, atomic_write, file_sha256

log = logging.getLogger(__name__)

FORMAT = "lkdetect-onnx"
FORMAT_VERSION = 1
INPUT, OUTPUTS = "images", ("keypoints", "scores")
# Per-file values of the weights' metadata that would be wrong for the ONNX file (it gets its own).
_FILE_KEYS = ("path", "sha256")


class _Exported(nn.Module):
    """The network with its input size fixed: (N, 3, H, W) in [0, 1] -> (keypoints, scores)."""

    def __init__(self, network: nn.Module, size: tuple[int, int]):
        super().__init__()
        self.network, self.size = network, size

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.network.decode(self.network.heatmap_logits(images), self.size)


def export_onnx(model: Any, metadata: dict[str, Any] | None, path: str | Path, opset: int = 17) -> Path:
    """Export a detector network to ONNX, written atomically (temp file + rename).

    Args:
        model: a :class:`~lkdetect.detector.Detector` or a :class:`~lkdetect.network.KeypointNet`.
        metadata: the weights' metadata (``load_weights`` / ``make_metadata``); ``None`` takes a Detector's own.
        path: the ``.onnx`` file to write.
        opset: ONNX opset version (>= 13).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: no metadata, or metadata whose K or input size disagree with the network.
    """
    import onnx

    proto = onnx_model(model, metadata, opset)
    path = Path(path)
    atomic_write(path, lambda tmp: onnx.save(proto, tmp))
    log.info("exported %s (opset %d)", path, opset)
    return path


def onnx_model(model: Any, metadata: dict[str, Any] | None, opset: int = 17) -> Any:
    """The checked ``onnx.ModelProto`` that :func:`export_onnx` writes (arguments and errors as there)."""
    import onnx

    network = getattr(model, "network", model)
    if metadata is None:
        metadata = getattr(model, "metadata", None)
    if not metadata:
        raise ValueError("export_onnx needs the weights' metadata (from load_weights or make_metadata)")
    k, size = int(network.num_keypoints), tuple(int(s) for s in metadata.get("input_size", network.input_size))
    if metadata.get("num_keypoints", k) != k or len(metadata.get("keypoint_names") or [0] * k) != k:
        raise ValueError(
            f"metadata does not fit the network: expected K = {k}, found num_keypoints "
            f"{metadata.get('num_keypoints')!r} and {len(metadata.get('keypoint_names') or [])} keypoint names"
        )
    if opset < 13:
        raise ValueError(f"opset must be >= 13, got {opset}")
    net = _Exported(copy.deepcopy(network).float().cpu().eval(), size)  # type: ignore[arg-type]
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            net,
            (torch.rand(2, 3, *size),),
            buffer,
            input_names=[INPUT],
            output_names=list(OUTPUTS),
            dynamic_axes={name: {0: "batch"} for name in (INPUT, *OUTPUTS)},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    _fix_output_shapes(proto, k)
    props = metadata_props(metadata, k, size)
    onnx.helper.set_model_props(proto, props)
    proto.doc_string = (
        f"lkdetect keypoint detector: images (N, 3, {size[0]}, {size[1]}) RGB [0, 1] -> keypoints, scores"
    )
    onnx.checker.check_model(proto, full_check=True)
    log.debug("traced the network to ONNX (K=%d, input %dx%d, opset %d)", k, size[0], size[1], opset)
    return proto


def _fix_output_shapes(proto: Any, k: int) -> None:
    """Name every output's batch axis ``batch`` and fix K (the tracer leaves symbolic names on some axes)."""
    dims = {"keypoints": ("batch", k, 2), "scores": ("batch", k)}
    for out in proto.graph.output:
        shape = out.type.tensor_type.shape
        for d, value in zip(shape.dim, dims[out.name]):
            if isinstance(value, str):
                d.dim_param = value
            else:
                d.dim_value = value


def metadata_props(metadata: dict[str, Any], k: int, size: Sequence[int]) -> dict[str, str]:
    """The ``metadata_props`` of an exported model (all values strings; lists and dicts as JSON)."""
    from . import __version__

    names = list(metadata.get("keypoint_names") or [f"kp{i}" for i in range(k)])
    stored = {key: v for key, v in metadata.items() if key not in _FILE_KEYS}
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "num_keypoints": str(k),
        "input_size": json.dumps(list(size)),
        "keypoint_names": json.dumps(names),
        "coordinates": str(metadata.get("coordinates", COORDINATES)),
        "color_order": str(metadata.get("color_order", COLOR_ORDER)),
        "input_range": "[0, 1]",
        "lkdetect_version": __version__,
        "source_weights_sha256": str(metadata.get("sha256", "")),
        "metadata": json.dumps(stored),
    }


class OnnxDetector(BaseDetector):
    """A detector on onnxruntime: the same ``detect`` / ``detect_batch`` / ``detect_video`` as ``Detector``.

    Args:
        path: an ``.onnx`` file written by :func:`export_onnx` (or ``lkdetect export``); :meth:`load` also takes
            lkdetect weights and exports them in memory.
        providers: onnxruntime execution providers; default ``["CPUExecutionProvider"]``.
        threads: onnxruntime ``intra_op_num_threads`` (``None``: onnxruntime's default).
        tta: test-time augmentation, as :meth:`lkdetect.Detector.load` (off by default).
        refine: scale-normalising refinement, as :meth:`lkdetect.Detector.load` (off by default).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not an ONNX model, no lkdetect metadata, or a graph that disagrees with its metadata.
    """

    def __init__(
        self,
        path: str | Path,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        tta: Any = None,
        refine: Any = None,
    ):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} not found")
        self._start(str(path), path, providers, threads, tta, refine)

    @classmethod
    def load(
        cls,
        name_or_path: str | Path | None = None,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        tta: Any = None,
        refine: Any = None,
    ) -> OnnxDetector:
        """An ``.onnx`` file, or lkdetect weights run on onnxruntime without an export step.

        Args:
            name_or_path: a path ending in ``.onnx`` (read as the constructor does), or what
                :meth:`lkdetect.Detector.load` takes: ``None`` (the shipped face detector), a shipped name, a
                ``.safetensors`` file or a run directory, exported in memory (about half a second; nothing is written).
            providers, threads, tta, refine: as the constructor.

        Raises:
            FileNotFoundError, CheckpointError: as the constructor and :meth:`lkdetect.Detector.load`.
        """
        if isinstance(name_or_path, (str, Path)) and Path(name_or_path).suffix.lower() == ".onnx":
            return cls(name_or_path, providers, threads, tta, refine)
        from .models import resolve_weights
        from .weights import load_weights

        path = resolve_weights(name_or_path)
        network, metadata = load_weights(path)
        model = onnx_model(network, metadata).SerializeToString()
        detector = cls.__new__(cls)
        detector._start(model, path, providers, threads, tta, refine)
        return detector

    def _start(
        self,
        model: str | bytes,
        path: Path,
        providers: Sequence[str] | None,
        threads: int | None,
        tta: Any,
        refine: Any,
    ) -> None:
        """Open the onnxruntime session on ``model`` (a file name or the serialised model), check its metadata.

        ``path`` is the file it came from (the ``.onnx`` file, or the weights exported in memory).
        """
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be >= 1 (or None), got {threads}")
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(model, options, providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as e:  # onnxruntime raises its own (pybind) exception types
            raise CheckpointError(f"{path} is not a readable ONNX model: {type(e).__name__}: {e}") from e
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        meta = _check_model(path, props, self.session)
        self.path = path
        self._init_metadata(meta, meta["num_keypoints"], meta["input_size"])
        self.tta = tta
        self.refine = refine

    def __repr__(self) -> str:
        h, w = self._size
        return f"OnnxDetector({self.path.name}, K={self._k}, input={h}x{w}, {self.session.get_providers()[0]})"

    def _run(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3, S_h, S_w) in [0, 1] -> (xy (B, K, 2), scores (B, K)) float64 in network-input pixels."""
        x = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        xy, scores = self.session.run(list(OUTPUTS), {INPUT: x})
        return xy.astype(np.float64), scores.astype(np.float64)


def _check_model(path: Path, props: dict[str, str], session: Any) -> dict[str, Any]:
    """Check the metadata_props against the graph; the detector's metadata dict."""
    if props.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: expected an lkdetect ONNX model (metadata_props format {FORMAT!r}), found format "
            f"{props.get('format')!r} with keys {sorted(props)}; export one with `lkdetect export`"
        )
    version = props.get("format_version", "")
    if not version.isdigit() or int(version) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: expected format_version <= {FORMAT_VERSION}, found {version!r}")
    try:
        k = int(props["num_keypoints"])
        size = [int(s) for s in json.loads(props["input_size"])]
        names = [str(n) for n in json.loads(props["keypoint_names"])]
        stored = json.loads(props["metadata"])
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: malformed lkdetect metadata_props ({type(e).__name__}: {e})") from e
    if len(size) != 2 or len(names) != k:
        raise CheckpointError(f"{path}: expected input_size (H, W) and {k} keypoint names, found {size}, {names}")
    for key, expected in (("color_order", COLOR_ORDER), ("coordinates", COORDINATES)):
        if props.get(key) != expected:
            raise CheckpointError(f"{path}: expected {key} {expected!r}, found {props.get(key)!r}")
    inputs, outputs = session.get_inputs(), {o.name: o for o in session.get_outputs()}
    if len(inputs) != 1 or inputs[0].name != INPUT:
        raise CheckpointError(f"{path}: expected one input {INPUT!r}, found {[i.name for i in inputs]}")
    found = list(inputs[0].shape)
    if len(found) != 4 or found[1] != 3 or list(found[2:]) != size:
        raise CheckpointError(
            f"{path}: expected input {INPUT!r} of shape (N, 3, {size[0]}, {size[1]}) as the metadata says, "
            f"found {found}"
        )
    for name, tail in (("keypoints", [k, 2]), ("scores", [k])):
        if name not in outputs or list(outputs[name].shape[1:]) != tail:
            found_shape = outputs[name].shape if name in outputs else "no such output"
            raise CheckpointError(
                f"{path}: expected output {name!r} of shape (N, {', '.join(map(str, tail))}), found {found_shape}"
            )
    return {
        **stored,
        "num_keypoints": k,
        "input_size": size,
        "keypoint_names": names,
        "lkdetect_version_exported": props.get("lkdetect_version"),
        "source_weights_sha256": props.get("source_weights_sha256", ""),
        "sha256": file_sha256(path),
        "path": str(path),
    }


__all__ = ["FORMAT", "OnnxDetector", "export_onnx", "metadata_props", "onnx_model"]
