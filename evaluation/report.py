"""Benchmark reports: ``report.json`` (everything), ``report.md`` (a table), ``ced.png`` (cumulative error
distribution) and ``best_worst.png`` (the best and worst test images with regressed vs ground-truth landmarks on the
preprocessed images). Matplotlib is imported lazily and drawn through its Agg canvas (no pyplot, no global backend).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import ced
from .samples import Benchmark, Sample

logger = logging.getLogger(__name__)


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def markdown_table(result: dict[str, Any]) -> str:
    """The rows of an ``evaluate`` result as a Markdown table (errors in %, AP in [0, 1])."""
    rows = result["rows"]
    extra = [k for k in rows[0] if k.startswith(("auc@", "failure@"))]
    head = ["benchmark", "train", "test", "K", "error %", "mean-shape %", "AP", "AP50", *extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["name"],
            r["n_train"],
            r["n_test"],
            result["num_keypoints"],
            _fmt(r["error"]),
            _fmt(r["baseline"]),
            _fmt(r["ap"], 3),
            _fmt(r["ap50"], 3),
            *(_fmt(r[k], 3) for k in extra),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def markdown_report(result: dict[str, Any]) -> str:
    det = result["detector"]
    opts = result["options"]
    lines = [
        f"# {result['benchmark']}: {result['metric']}",
        "",
        markdown_table(result),
        "",
        f"- detector: {det.get('name') or det.get('type')} (sha256 {det.get('sha256') or 'unknown'})"
        f"{'; test-time augmentation: ' + det['tta'] if det.get('tta') else ''}"
        f"{'; refinement: ' + det['refine'] if det.get('refine') else ''}",
        f"- regression: linear, bias={opts['bias']}, ridge={opts['ridge']}, fit={opts.get('fit', 'lstsq')}"
        f" (training images used: {', '.join(str(r.get('n_train_fitted', r['n_train'])) for r in result['rows'])});"
        f" coordinates {opts['coordinates']}",
        f"- limit: {opts['limit']}" if opts.get("limit") else "- all images of both splits",
        *(f"- {k}: {v}" for k, v in result.get("protocol", {}).items()),
        f"- wall time: {result.get('wall_time_s', 0.0):.1f} s",
    ]
    return "\n".join(lines) + "\n"


def write_json(result: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(result, indent=2, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_ced(errors: dict[str, np.ndarray], threshold: float, path: Path, xlabel: str) -> None:
    """One CED curve per named error set, on [0, 2 * threshold] %."""
    fig = _figure(5, 4)
    ax = fig.add_subplot(1, 1, 1)
    for name, e in errors.items():
        t, f = ced(e, 2 * threshold)
        ax.plot(t, f, label=name)
    ax.axvline(threshold, color="gray", lw=0.8, ls="--")
    ax.set(xlabel=xlabel, ylabel="fraction of test images", xlim=(0, 2 * threshold), ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


def plot_best_worst(
    bench: Benchmark, samples: list[Sample], pred_px: np.ndarray, errors: np.ndarray, path: Path, n: int = 6
) -> None:
    """Grid: the ``n`` best (top row) and ``n`` worst (bottom row) test images; green dots = ground truth, red
    crosses = regressed prediction, joined by a line; title = the image's error in %."""
    valid = np.flatnonzero(~np.isnan(errors))
    order = valid[np.argsort(errors[valid], kind="stable")]
    n = max(1, min(n, len(order) // 2 or 1))
    picks = [list(order[:n]), list(order[::-1][:n])]
    fig = _figure(2.2 * n, 4.8)
    for r, idx in enumerate(picks):
        for c, i in enumerate(idx):
            ax = fig.add_subplot(2, n, r * n + c + 1)
            image, gt = bench.load_image(samples[i])
            vis = samples[i].visible
            ax.imshow(image)
            for p, g in zip(pred_px[i][vis], gt[vis]):
                ax.plot([p[0], g[0]], [p[1], g[1]], color="yellow", lw=0.8)
            ax.scatter(gt[vis, 0], gt[vis, 1], s=14, c="lime", edgecolors="black", linewidths=0.4)
            ax.scatter(pred_px[i][vis, 0], pred_px[i][vis, 1], s=18, c="red", marker="x", linewidths=1.0)
            ax.set_title(f"{'best' if r == 0 else 'worst'} {errors[i]:.1f} %", fontsize=8)
            ax.set_xlim(-0.5, image.shape[1] - 0.5)
            ax.set_ylim(image.shape[0] - 0.5, -0.5)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)


def write_report(
    result: dict[str, Any],
    out: Path,
    bench: Benchmark,
    test_samples: list[Sample],
    pred_px: np.ndarray,
    errors: dict[str, np.ndarray],
    threshold: float,
) -> dict[str, str]:
    """Write report.json, report.md, ced.png and best_worst.png into ``out``; returns {kind: path}.

    ``pred_px`` (N, L, 2, pixels of the preprocessed images) and ``test_samples`` are those of the headline row;
    ``errors``: the per-image errors of every row by name (the last is the headline).
    """
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "json": out / "report.json",
        "markdown": out / "report.md",
        "ced": out / "ced.png",
        "best_worst": out / "best_worst.png",
    }
    xlabel = result["metric"]
    plot_ced(errors, threshold, files["ced"], xlabel)
    plot_best_worst(bench, test_samples, pred_px, errors[list(errors)[-1]], files["best_worst"])
    result = {**result, "files": {k: str(v) for k, v in files.items()}}
    files["markdown"].write_text(markdown_report(result))
    write_json(result, files["json"])
    logger.info("report written to %s", out)
    return result["files"]
