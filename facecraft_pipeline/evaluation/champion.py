"""The champion rule: which kept checkpoint of which model looks most like the owner.

1. Eligible: the checkpoint shows a detectable face in at least `min_face_share` of its images
   (a model that drew 1 face in 16 has not shown it can draw the owner, however good that face),
   and, when it drew two faces or more, their mean pairwise embedding distance is at least
   `min_diversity` (a model that draws the same face every time is collapsed, not good).
2. Among the eligible, the highest identity score: the mean best-match cosine similarity of its
   faces to the owner's held-out photos.
3. Scores within `tie_margin` of the best are a tie: the most diverse of them wins (then the
   later step, then the model name, so the choice is deterministic).
No eligible checkpoint: no champion, and the reason says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from facecraft_pipeline.evaluation.scores import CheckpointScore


@dataclass(frozen=True)
class Verdict:
    score: CheckpointScore
    eligible: bool
    why: str  # why not eligible ("" when eligible)


@dataclass(frozen=True)
class Champion:
    model: str
    step: int
    digest: str
    checkpoint: str
    reason: str


def judge(score: CheckpointScore, min_face_share: float, min_diversity: float) -> Verdict:
    if score.faces == 0 or score.identity_mean is None:
        return Verdict(score, False, f"no detectable face in {score.images} images")
    if score.face_share < min_face_share:
        return Verdict(score, False, f"faces in {score.faces}/{score.images} images, below the {min_face_share:.0%} minimum")
    if score.diversity is not None and score.diversity < min_diversity:
        return Verdict(score, False, f"the same face every time (diversity {score.diversity:.3f} < {min_diversity})")
    return Verdict(score, True, "")


def choose_champion(scores: Sequence[CheckpointScore], min_face_share: float = 0.5, min_diversity: float = 0.02,
                    tie_margin: float = 0.005) -> tuple[Champion | None, str, list[Verdict]]:
    """(champion or None, the reason, one verdict per score) by the rule in the module doc."""
    verdicts = [judge(s, min_face_share, min_diversity) for s in scores]
    eligible = [v.score for v in verdicts if v.eligible]
    if not eligible:
        if not any(s.faces for s in scores):
            return None, "no checkpoint produced a detectable face, so none is champion", verdicts
        return None, f"no checkpoint shows faces in at least {min_face_share:.0%} of its images with some diversity", verdicts
    top = max(s.identity_mean for s in eligible)  # type: ignore[type-var]
    tied = [s for s in eligible if s.identity_mean >= top - tie_margin]  # type: ignore[operator]
    best = max(tied, key=lambda s: (s.diversity if s.diversity is not None else -1.0, s.step, s.model))
    reason = (f"{best.name}: highest identity {best.identity_mean:.3f} (best-match cosine to held-out owner photos) "
              f"with faces in {best.faces}/{best.images} images")
    if len(tied) > 1:
        reason += f"; tied within {tie_margin} with {', '.join(s.name for s in tied if s is not best)}, won on diversity"
    reason += f"; {len(eligible)} of {len(scores)} checkpoints eligible"
    return Champion(best.model, best.step, best.digest, best.checkpoint, reason), reason, verdicts
