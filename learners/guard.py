"""Whether the blend may be served instead of the champion: only while it does not trail it on
recent labels, weighed as traffic is, and only after a lead beyond noise.

Why so strict: labels are days old, so the guard judges the blend on last week's traffic, and
with a weekly retrain on last week's champion. Replaying the decisions over three replays'
stored scores (README, Replay): the earlier rule (a lead of 0.02 on 2,000 unweighted labels)
served weeks 0.014-0.061 AP below the champion; a lead of 0.02 + 1 se still lost 0.011-0.029
in four of fifteen weeks; 0.02 + 2 se on 4,000 labels, legit labels weighed as traffic, never
fell below the champion (with a champion refit every week, the blend never led beyond noise).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

# Bootstrap resamples of the lead's standard error, and how many new labels reuse the last one.
BOOTSTRAP_REPS = 100
RECHECK_LABELS = 100
# Standard errors of the lead the blend must show beyond the margin before it serves.
NOISE_Z = 2.0


def weighted_ap(y: np.ndarray, score: np.ndarray, w: np.ndarray) -> float:
    return float(average_precision_score(y, score, sample_weight=w))


def lead_se(
    y: np.ndarray, blend: np.ndarray, champion: np.ndarray, w: np.ndarray, reps: int, seed: int
) -> float:
    """Standard error of AP(blend) - AP(champion) on these labels: a paired Poisson bootstrap
    (both scores of a label resampled alike)."""
    rng = np.random.default_rng(seed)
    leads = []
    for _ in range(reps):
        wb = w * rng.poisson(1.0, len(y))
        if 0 < wb[y].sum() < wb.sum():
            leads.append(weighted_ap(y, blend, wb) - weighted_ap(y, champion, wb))
    return float(np.std(leads)) if len(leads) > 1 else float("inf")


class BlendGuard:
    """Keeps the blend's and the champion's scores of the last `window` labels that had both
    and compares their average precision there, on at least `min_positives` frauds.

    Labels are not a sample of traffic (every fraud is reported, few legit payments are): each
    legit label weighs `legit_weight` (decide's argument; the blend's label bias gives it), so
    the AP compared is the one traffic would show. The champion is served until the blend
    leads it by `margin` plus `noise_z` standard errors of the lead (paired bootstrap): a lead
    of a few frauds is noise, and the gap is missed fraud. The blend then serves until it
    trails by more than `tolerance`. Every switch mixes two rankings within a day's alerts,
    so the two thresholds keep it from flapping. A new champion (reset) is served until the
    blend has led it afresh: the comparisons held were with another model.
    """

    def __init__(
        self,
        window: int = 4000,
        tolerance: float = 0.0,
        min_positives: int = 20,
        margin: float = 0.02,
        noise_z: float = NOISE_Z,
    ) -> None:
        self.window = window
        self.tolerance = tolerance
        self.margin = margin
        self.min_positives = min_positives
        self.noise_z = noise_z
        self._y = np.zeros(window, dtype=bool)
        self._blend = np.zeros(window)
        self._champion = np.zeros(window)
        self._next = 0
        self._held = 0
        self._changed = True
        self._se: tuple[int, float] = (-RECHECK_LABELS, 0.0)  # (labels seen, se) when computed
        self.labels = 0
        self.serve_blend = False
        self.reason = "the champion is served until the blend has been compared with it"
        self.figures: dict[str, float] = {}
        self.swapped = ""  # why the comparisons were last forgotten, until the blend serves

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A checkpoint of the guard before noise and traffic weights: the same window, new rules.
        defaults = {"noise_z": NOISE_Z, "_se": (-RECHECK_LABELS, 0.0), "labels": 0, "swapped": ""}
        self.__dict__.update({**defaults, **state})

    def reset(self, why: str) -> None:
        """Forget the labels held and serve the champion (a new one is served: `why`)."""
        self._next = self._held = 0
        self._changed, self.serve_blend, self.figures = True, False, {}
        self._se = (-RECHECK_LABELS, 0.0)
        self.swapped = why
        self.reason = f"champion: {why}; the blend must lead it afresh"

    def update(self, is_fraud: bool, blend: float, champion: float) -> None:
        """One label with the scores the blend and the champion gave its transaction."""
        i = self._next
        self._y[i], self._blend[i], self._champion[i] = bool(is_fraud), blend, champion
        self._next = (i + 1) % self.window
        self._held = min(self._held + 1, self.window)
        self._changed = True
        self.labels += 1

    def decide(self, legit_weight: float = 1.0) -> bool:
        """Compare on the labels held (only if new ones came); True: serve the blend."""
        if not self._changed:
            return self.serve_blend
        self._changed = False
        n = self._held
        y = self._y[:n]
        positives = int(y.sum())
        if positives < self.min_positives or positives == n:
            self.serve_blend = False
            self.reason = (
                f"champion: {positives} frauds among the last {n} labels scored by both, "
                f"{self.min_positives} needed to compare the blend with it"
                + (f" ({self.swapped})" if self.swapped else "")
            )
            return False
        w = np.where(y, 1.0, max(legit_weight, 1e-9))
        ours = weighted_ap(y, self._blend[:n], w)
        theirs = weighted_ap(y, self._champion[:n], w)
        lead = ours - theirs
        wanted = self.noise_z and not self.serve_blend and lead >= self.margin
        se = self._lead_se(y, w) if wanted else 0.0
        self.figures = {
            "blend_ap": ours,
            "champion_ap": theirs,
            "lead_se": se,
            "legit_weight": legit_weight,
            "labels": float(n),
        }
        if self.serve_blend:
            self.serve_blend = lead >= -self.tolerance
            rule = f"served while it trails by at most {self.tolerance:g}"
        else:
            self.serve_blend = lead >= self.margin + self.noise_z * se
            rule = f"served once it leads by {self.margin:g} + {self.noise_z:g} se ({se:.4f})"
        verb = "blend" if self.serve_blend else "champion"
        if self.serve_blend:
            self.swapped = ""
        self.reason = (
            f"{verb}: blend AP {ours:.4f} vs champion {theirs:.4f} on the last {n} labels, "
            f"legit weighing {legit_weight:.1f} (the blend is {rule})"
        )
        return self.serve_blend

    def _lead_se(self, y: np.ndarray, w: np.ndarray) -> float:
        """The lead's standard error, recomputed every RECHECK_LABELS labels at most."""
        at, se = self._se
        if self.labels - at >= RECHECK_LABELS:
            n = self._held
            se = lead_se(y, self._blend[:n], self._champion[:n], w, BOOTSTRAP_REPS, self.labels)
            self._se = (self.labels, se)
        return se
