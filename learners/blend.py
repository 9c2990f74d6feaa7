"""The served score: a logistic stacker on the component scores' logits, refit on recent labels.

Inputs are logit(score) of each component (LightGBM champion and each River learner), as they
were served at event time; a missing component counts as logit 0. Every `refit_every` labels
the weights are refit by a few damped Newton steps on the last `window` labels that had the
same components as the newest one (labels scored before a champion existed say nothing about
how to weigh it), each weighted by recency (halved every `half_life` labels) and frauds by
`fraud_weight` against imbalance, with an L2 pull towards the prior "serve the champion"
(weight 1 on `lead`, 0 elsewhere): with few labels the blend stays close to the champion.
While a component is served that the last fit never saw (a first champion arrives after the
learners were blended without it), the blend serves the prior, i.e. the champion, until a
refit includes labels scored with it; adding its logit to weights fit without it would count
the evidence twice.

Why a windowed refit rather than SGD on each label: per-label steps at a rate fast enough to
follow a concept change kept the weights wandering, and the blend ranked below its best
component on stable traffic; the refit is exact on its window and forgets at a known pace
(replaying the component scores served in one run of tests/integration/test_concept_drift.py:
AUC 0.95 vs the champion's 0.94 before the drift, 0.72 vs 0.42 after it, where the earlier
per-label RMSprop blend gave 0.93 and 0.66).
The labels are not a sample of traffic: every fraud is reported and few legit payments are,
and frauds weigh `fraud_weight` more; so a stacker fit on them scores on the labels' scale
(tens of times the champion's probabilities in a replay with 10% of legit labelled), and
switching the served score between it and the champion mixes two scales in one ranking. The
champion is calibrated on traffic (its training counts a mature transaction without an
outcome as legit), so each refit also finds the intercept shift that makes the champion alone
fit the same weighted labels; that shift is the labels' log-odds bias (prior correction), and
the blend serves its fit minus it: on the champion's scale.
A refit needs `min_fit_positives` frauds among the labels it uses; before that the weights
stay as they are. Until `min_labels` outcomes with `min_positives` frauds were learned,
`ready` is False and the worker serves the champion (or the best available scorer) instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Checkpoints pickled the guard as streamlearn.learners.blend.BlendGuard: it still resolves.
from streamlearn.learners.guard import BlendGuard

__all__ = ["BLEND", "Blend", "BlendGuard", "BlendScorer", "fit_logistic", "label_bias", "logit"]

BLEND = "blend"
EPS = 1e-4  # scores are clipped into [EPS, 1 - EPS] before the logit: |logit| <= 9.2


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1.0 - EPS)
    return np.log(p / (1.0 - p))


def _loss(a: np.ndarray, y: np.ndarray, w: np.ndarray, theta: np.ndarray, prior, pen) -> float:
    z = a @ theta
    r = theta - prior
    return float(w @ (np.logaddexp(0.0, z) - y * z)) + 0.5 * float(pen @ (r * r))


def fit_logistic(
    a: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    theta: np.ndarray,
    prior: np.ndarray,
    pen: np.ndarray,
    iters: int = 8,
) -> np.ndarray:
    """Weighted logistic regression of y on a (last column: intercept) with an L2 pull
    `pen` towards `prior`; damped Newton from `theta` (each step lowers the loss)."""
    value = _loss(a, y, w, theta, prior, pen)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ theta, -35.0, 35.0)))
        grad = a.T @ (w * (p - y)) + pen * (theta - prior)
        hess = (a * (w * p * (1.0 - p) + 1e-9)[:, None]).T @ a + np.diag(pen + 1e-6)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-3:
            candidate = theta - t * step
            cv = _loss(a, y, w, candidate, prior, pen)
            if cv <= value:
                break
            t *= 0.5
        else:
            break  # no step lowers the loss: at the optimum up to rounding
        theta, value = candidate, cv
        if float(np.abs(t * step).max()) < 1e-4:
            break
    return theta


def label_bias(z: np.ndarray, y: np.ndarray, w: np.ndarray, iters: int = 20) -> float:
    """The shift b that makes sigmoid(z + b) fit the weighted labels y best (1-D Newton):
    how much more likely fraud is among these labels than the calibrated logits z say."""
    b = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(z + b, -35.0, 35.0)))
        grad = float(w @ (p - y))
        hess = float(w @ (p * (1.0 - p))) + 1e-9
        # Convex in b: a Newton step capped at 2 (far from the optimum p saturates and the
        # curvature vanishes) still moves towards it.
        step = max(-2.0, min(2.0, grad / hess))
        b -= step
        if abs(step) < 1e-6:
            break
    return b


class Blend:
    """Online stacker over named component scores (order fixed at construction)."""

    name = BLEND

    def __init__(
        self,
        components: Sequence[str],
        *,
        lead: str | None = None,
        window: int = 4000,
        half_life: float = 1000.0,
        refit_every: int = 100,
        l2: float = 10.0,
        fraud_weight: float = 10.0,
        min_labels: int = 200,
        min_positives: int = 5,
        min_fit_positives: int = 5,
    ) -> None:
        self.components = tuple(components)
        self.prior = np.zeros(len(self.components))
        if lead is not None and lead in self.components:
            self.prior[self.components.index(lead)] = 1.0
        self.weights = self.prior.copy()
        self.intercept = 0.0
        self.offset = 0.0  # the labels' log-odds bias against the lead's scale
        self._lead = self.components.index(lead) if lead in self.components else None
        self.window = window
        self.half_life = half_life
        self.refit_every = refit_every
        self.l2 = l2
        self.fraud_weight = fraud_weight
        self.min_labels = min_labels
        self.min_positives = min_positives
        self.min_fit_positives = min_fit_positives
        self._x = np.zeros((window, len(self.components)))
        self._y = np.zeros(window)
        self._present = np.zeros((window, len(self.components)), dtype=bool)
        self._fitted = np.zeros(len(self.components), dtype=bool)  # present in the last fit
        self._next = 0  # ring position of the next label
        self._held = 0
        self.labels = 0
        self.positives = 0

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A checkpoint of the earlier per-label SGD blend: keep its weights, start the window.
        self.__dict__.update(state)
        if "_x" not in state:
            fresh = Blend(self.components)
            for key in (
                "window",
                "half_life",
                "refit_every",
                "l2",
                "_x",
                "_y",
                "_present",
                "_next",
                "_held",
            ):
                setattr(self, key, getattr(fresh, key))
            self.prior = np.zeros(len(self.components))
            self.prior[int(np.argmax(self.weights))] = 1.0

    @property
    def ready(self) -> bool:
        return self.labels >= self.min_labels and self.positives >= self.min_positives

    def score_batch(self, columns: Mapping[str, np.ndarray | None], n: int) -> np.ndarray:
        """The blended fraud probability for n rows of component scores."""
        return self.scorer().score_batch(columns, n)

    def scorer(self) -> BlendScorer:
        """The weights as they are now, frozen, for the scoring path."""
        return BlendScorer(
            self.components,
            self.weights.copy(),
            self.intercept - self.__dict__.get("offset", 0.0),
            self.prior.copy(),
            np.array(self.__dict__.get("_fitted", np.ones(len(self.components), dtype=bool))),
            self.ready,
        )

    def learn(self, scores: Mapping[str, float | None], is_fraud: bool) -> None:
        """Keep one outcome with the component scores served for it; refit when due."""
        row = np.zeros(len(self.components))
        present = self._present[self._next]
        for j, name in enumerate(self.components):
            v = scores.get(name)
            present[j] = v is not None
            if v is not None:
                p = min(max(float(v), EPS), 1.0 - EPS)
                row[j] = np.log(p / (1.0 - p))
        self._x[self._next] = row
        self._y[self._next] = float(bool(is_fraud))
        self._next = (self._next + 1) % self.window
        self._held = min(self._held + 1, self.window)
        self.labels += 1
        self.positives += int(bool(is_fraud))
        if self.labels % self.refit_every == 0:
            self.refit()

    def refit(self) -> None:
        """Fit the weights on the labels held like the newest one, newest weighing most."""
        newest_first = (self._next - 1 - np.arange(self._held)) % self.window
        present = self._present[newest_first]
        alike = (present == present[0]).all(axis=1)
        age = np.nonzero(alike)[0]  # labels since this one, among all held
        rows = newest_first[alike]
        x, y = self._x[rows], self._y[rows]
        if y.sum() < self.__dict__.get("min_fit_positives", 1):
            return  # too few frauds to weigh the components against each other yet
        w = 0.5 ** (age / self.half_life) * np.where(y > 0, self.fraud_weight, 1.0)
        a = np.hstack([x, np.ones((len(rows), 1))])
        k = len(self.components)
        theta = fit_logistic(
            a,
            y,
            w,
            np.append(self.weights, self.intercept),
            np.append(self.prior, 0.0),
            np.append(np.full(k, self.l2), 0.0),
        )
        self.weights, self.intercept = theta[:-1], float(theta[-1])
        self._fitted = present[0].copy()
        lead = self.__dict__.get("_lead")
        if lead is not None and present[0][lead]:
            self.offset = label_bias(x[:, lead], y, w)

    def weights_by_component(self) -> dict[str, float]:
        out = dict(zip(self.components, self.weights.tolist(), strict=True))
        out["intercept"] = self.intercept
        return out


@dataclass(frozen=True, slots=True)
class BlendScorer:
    """The stacker's weights, frozen: what the scoring path applies until the next refit."""

    components: tuple[str, ...]
    weights: np.ndarray
    intercept: float
    prior: np.ndarray
    fitted: np.ndarray  # components present in the last fit
    ready: bool

    def score_batch(self, columns: Mapping[str, np.ndarray | None], n: int) -> np.ndarray:
        """The blended fraud probability for n rows of component scores."""
        x = np.zeros((n, len(self.components)))
        for j, name in enumerate(self.components):
            scores = columns.get(name)
            if scores is not None:
                x[:, j] = logit(np.asarray(scores, dtype=np.float64))
        present = np.array([columns.get(c) is not None for c in self.components])
        # A component the weights were not fit with: serve the prior (the champion) instead.
        unseen = bool((present & ~self.fitted).any())
        z = x @ self.prior if unseen else x @ self.weights + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))
