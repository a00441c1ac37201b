"""Which GAN snapshot the detector learns from: a rule on the label-free rows of the GAN's stats.jsonl.

At every snapshot the GAN trainer logs keypoint diagnostics (``diag``, :mod:`gan.diagnostics`) and swap metrics
(``metrics``, :mod:`gan.metrics`) of its EMA generator. ``lkdetect learn`` keeps the weights of the snapshots in the
second half of training (earlier images are still improving and realism is not measured by default) and picks one:

1. Keypoints must be alive: every keypoint moves across samples (``kp_spread_min`` >= R / 64 px) and at least half
   of them lie inside the central 70 % of the image (``kp_central`` >= 0.5). If no snapshot passes, all compete.
2. Among those, the highest score, the sum of three terms that are 0 at chance and 1 at best:

   - move locality: ``(locality - locality_chance) / (1 - locality_chance)``: moving a keypoint changes the image
     near it (its part follows it);
   - swap locality: ``(swap_locality - swap_locality_chance) / (1 - swap_locality_chance)``: exchanging one part's
     embedding changes the image near its keypoint;
   - appearance share: ``app_share_region``: the keypoint embeddings, not the background, carry the appearance
     near the keypoints.

   A missing term (``train.n_metric_pairs=0`` logs no swap metrics) counts 0. Ties go to the later snapshot.

``lkdetect learn`` applies this rule with ``--snapshot best``; by default it takes the last snapshot (and logs the
scores of all). On the birds data the rule chose step 2,500 of 4,708, whose keypoints had the higher scores but
were not mirror-symmetric (the detector's mirrored test-time augmentation read worse than none, so its self-training
labels were worse): training-split CV 19.18 % against 17.73 % from the last snapshot (CHANGELOG).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gan.stats import snapshot_rows

LATE_FRACTION = 0.5  # snapshots at steps >= this fraction of the GAN's iterations are candidates
MIN_SPREAD = 1 / 64  # kp_spread_min >= this fraction of the resolution (px)
MIN_CENTRAL = 0.5  # kp_central >= this


@dataclass(frozen=True)
class SnapshotScore:
    """The rule's reading of one snapshot row."""

    step: int
    alive: bool  # passes the keypoint checks (rule 1)
    score: float  # rule 2: move_locality + swap_locality + appearance
    terms: dict[str, float]  # the three terms and the raw diagnostics they came from

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "alive": self.alive, "score": round(self.score, 4), **self.terms}


def _gain(value: float | None, chance: float | None) -> float:
    """(value - chance) / (1 - chance): 0 at chance, 1 when all the change is local; 0 when not measured."""
    if value is None or chance is None or not math.isfinite(value) or chance >= 1:
        return 0.0
    return (value - chance) / (1 - chance)


def score_row(row: dict[str, Any], resolution: int) -> SnapshotScore:
    """Score a snapshot row of stats.jsonl (``{"step", "diag": {...}, "metrics": {...}}``)."""
    diag, metrics = row.get("diag") or {}, row.get("metrics") or {}
    alive = (
        float(diag.get("kp_spread_min", 0.0)) >= MIN_SPREAD * resolution
        and float(diag.get("kp_central", 0.0)) >= MIN_CENTRAL
    )
    app = metrics.get("app_share_region")
    terms = {
        "move_locality": _gain(diag.get("locality"), diag.get("locality_chance")),
        "swap_locality": _gain(metrics.get("swap_locality"), metrics.get("swap_locality_chance")),
        "appearance": float(app) if isinstance(app, (int, float)) and math.isfinite(app) else 0.0,
    }
    raw = {k: diag[k] for k in ("kp_spread_min", "kp_spread_mean", "kp_central") if k in diag}
    return SnapshotScore(
        int(row["step"]), alive, sum(terms.values()), {**{k: round(v, 4) for k, v in terms.items()}, **raw}
    )


def is_candidate(step: int, total: int) -> bool:
    """Whether a snapshot at ``step`` of a ``total``-iteration run competes (the second half, and the last step)."""
    return step >= LATE_FRACTION * total or step >= total


def choose(records: list[dict[str, Any]], total: int, resolution: int) -> tuple[SnapshotScore, list[SnapshotScore]]:
    """The chosen snapshot and the scores of all candidates (by step).

    Args:
        records: the GAN run's stats.jsonl records.
        total: the GAN's iterations (snapshots at steps >= ``LATE_FRACTION * total`` compete).
        resolution: the GAN's image side R in px.

    Raises:
        ValueError: no candidate snapshot row.
    """
    scores = [score_row(r, resolution) for r in snapshot_rows(records) if is_candidate(int(r["step"]), total)]
    if not scores:
        raise ValueError(f"no snapshot at a step >= {LATE_FRACTION * total:g} in the GAN's stats.jsonl")
    pool = [s for s in scores if s.alive] or scores
    best = max(pool, key=lambda s: (s.score, s.step))
    return best, scores
