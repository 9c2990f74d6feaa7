"""The evaluation gate: a challenger replaces the champion only if it is better on the same rows.

Both models are scored on the same holdout rows (the pipeline picks them). Promotion needs
the primary metric (average precision by default) to beat the champion's by at least
`margin`, and no other metric may lose more than its tolerance. Pure: no I/O.

Noise: a holdout of a few days holds 100-250 frauds, and the AP difference of two models on
it has a paired-bootstrap standard error (se) of about 0.02 (AUC ~0.012). Given the se of each
difference (compare.py), the gate refuses only a loss beyond noise: the primary gain must reach
margin - noise_z * se, another metric may lose max(tolerance, noise_z * se). A newer model
within noise of the champion knows the newest fraud (in one replay the rule without noise kept
a stale champion through gains of -0.006 and -0.029 AP, se 0.020 and 0.018, and the next
week's AP trailed an offline model by 0.10); a worse one by more than 2 se is still refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Which direction is better, per metric (names as evaluate() returns them).
HIGHER_IS_BETTER: dict[str, bool] = {
    "ap": True,
    "auc": True,
    "p_at_k_day": True,
    "p_at_1pct": True,
    "logloss": False,
    "ece": False,
}
DEFAULT_TOLERANCES: dict[str, float] = {
    "auc": 0.01,
    "p_at_k_day": 0.05,
    "logloss": 0.005,
    "ece": 0.01,
}
# Float slack, so a loss exactly at its tolerance (0.51 - 0.50 vs 0.01) passes.
EPS = 1e-9
# How many standard errors of a paired difference count as noise: one-sided, an equal
# challenger is refused about 2% of the time.
NOISE_Z = 2.0


@dataclass(frozen=True)
class GateConfig:
    """primary must gain >= margin (negative: may trail by that much); the others may lose at
    most their tolerance, in the metric's own units. prefix names the split the metrics are
    keyed under ("holdout_ap"). noise_z: how many standard errors of a difference (when the
    judge is given them) widen the margin and tolerances; 0 ignores noise."""

    primary: str = "ap"
    margin: float = 0.0
    tolerances: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    prefix: str = "holdout_"
    noise_z: float = NOISE_Z

    def __post_init__(self) -> None:
        for name in (self.primary, *self.tolerances):
            if name not in HIGHER_IS_BETTER:
                raise ValueError(f"unknown gate metric {name!r}; one of {sorted(HIGHER_IS_BETTER)}")
        if any(t < 0 or math.isnan(t) for t in self.tolerances.values()):
            raise ValueError("gate tolerances must be >= 0")
        if not self.noise_z >= 0:
            raise ValueError("the gate's noise_z must be >= 0")

    def describe(self) -> str:
        """One line for the registry: the rules a decision was taken under."""
        tolerances = ", ".join(f"{k} {v:g}" for k, v in self.tolerances.items()) or "none"
        noise = f"; noise {self.noise_z:g} se" if self.noise_z else ""
        return f"{self.primary} margin {self.margin:+g}; tolerances {tolerances}{noise}"

    def with_prefix(self, prefix: str) -> GateConfig:
        """The same rules on metrics keyed under another split ("live_" for shadow runs)."""
        return GateConfig(self.primary, self.margin, dict(self.tolerances), prefix, self.noise_z)


def gate_config(
    *,
    primary: str = "ap",
    margin: float = 0.0,
    tol_auc: float = DEFAULT_TOLERANCES["auc"],
    tol_p_at_k_day: float = DEFAULT_TOLERANCES["p_at_k_day"],
    tol_logloss: float = DEFAULT_TOLERANCES["logloss"],
    tol_ece: float = DEFAULT_TOLERANCES["ece"],
    noise_z: float = NOISE_Z,
) -> GateConfig:
    """The gate from its settings (STREAMLEARN_GATE_*); the primary metric needs no tolerance."""
    tolerances = {
        "auc": tol_auc,
        "p_at_k_day": tol_p_at_k_day,
        "logloss": tol_logloss,
        "ece": tol_ece,
    }
    tolerances.pop(primary, None)
    return GateConfig(primary=primary, margin=margin, tolerances=tolerances, noise_z=noise_z)


def gate_from_settings(settings: Any) -> GateConfig:
    """gate_config from a Settings object's gate_* fields (STREAMLEARN_GATE_*)."""
    return gate_config(
        primary=settings.gate_primary,
        margin=settings.gate_margin,
        tol_auc=settings.gate_tol_auc,
        tol_p_at_k_day=settings.gate_tol_p_at_k_day,
        tol_logloss=settings.gate_tol_logloss,
        tol_ece=settings.gate_tol_ece,
    )


DEFAULT_GATE = GateConfig()


@dataclass(frozen=True)
class Decision:
    """Whether the challenger replaces the champion, and why (one line)."""

    promote: bool
    reason: str
    champion_version: str | None = None
    # Both scored on the same holdout rows (compared_rows of them).
    champion_metrics: dict[str, float] = field(default_factory=dict)
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    compared_rows: int = 0


def gain(name: str, challenger: float, champion: float) -> float:
    """How much better the challenger is on `name` (negative: worse), in the metric's units."""
    diff = challenger - champion
    return diff if HIGHER_IS_BETTER[name] else -diff


def judge(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    config: GateConfig = DEFAULT_GATE,
    champion_version: str | None = None,
    compared_rows: int = 0,
    note: str = "",
    noise: Mapping[str, float] | None = None,
) -> Decision:
    """Apply the gate. champion None means nothing comparable is served (note says why): the
    challenger is promoted if its own primary metric is defined. noise: the standard error of
    each metric's difference on these rows (unprefixed names: "ap"); a missing one is 0."""
    p = config.prefix
    ours = _get(challenger, p + config.primary)
    if champion is None:
        if challenger and math.isnan(ours):
            return Decision(False, f"the challenger's {config.primary} is undefined")
        return Decision(True, note or "no champion to compare with")
    fields: dict[str, Any] = {
        "champion_version": champion_version,
        "champion_metrics": dict(champion),
        # The challenger's figures, with the standard error of each gain the gate weighed.
        "challenger_metrics": dict(challenger)
        | {f"{p}{n}_gain_se": se for n, se in (noise or {}).items()},
        "compared_rows": compared_rows,
    }
    who = f"champion {champion_version}" if champion_version else "the champion"
    if math.isnan(ours):
        return Decision(False, f"the challenger's {config.primary} is undefined", **fields)
    theirs = _get(champion, p + config.primary)
    if not math.isnan(theirs):
        g = gain(config.primary, ours, theirs)
        se = (noise or {}).get(config.primary, float("nan"))
        bar = config.margin - (config.noise_z * se if not math.isnan(se) else 0.0)
        if g < bar - EPS:
            return Decision(
                False,
                f"{config.primary} {ours:.4f} vs {who} {theirs:.4f}: gain {g:+.4f} is below "
                f"the margin {config.margin:+.4f}{_noted(config, noise, config.primary, ' less')}",
                **fields,
            )
    refused = _beyond_tolerance(challenger, champion, config, noise, who)
    if refused:
        return Decision(False, refused, **fields)
    shown = f"{theirs:.4f}" if not math.isnan(theirs) else "undefined"
    return Decision(
        True,
        f"{config.primary} {ours:.4f} vs {who} {shown} on {compared_rows} rows"
        f"{_noted(config, noise, config.primary, ', the gain')}; no other metric lost more "
        f"than its tolerance",
        **fields,
    )


def _beyond_tolerance(
    challenger: Mapping[str, float],
    champion: Mapping[str, float],
    config: GateConfig,
    noise: Mapping[str, float] | None,
    who: str,
) -> str:
    """Why a metric other than the primary refuses the challenger ("" if none does): it lost
    more than max(its tolerance, noise_z standard errors of the difference)."""
    p = config.prefix
    for name, allowed in config.tolerances.items():
        se = (noise or {}).get(name, float("nan"))
        tolerance = max(allowed, config.noise_z * se) if not math.isnan(se) else allowed
        a, b = _get(challenger, p + name), _get(champion, p + name)
        if math.isnan(b):
            continue  # the champion's value is undefined: nothing to lose
        if math.isnan(a):
            return f"the challenger's {name} is undefined"
        loss = -gain(name, a, b)
        if loss > tolerance + EPS:
            return (
                f"{name} {a:.4f} vs {who} {b:.4f}: loses {loss:.4f}, more than the "
                f"tolerance {allowed:.4f}{_noted(config, noise, name, ' or')}"
            )
    return ""


def _noted(config: GateConfig, noise: Mapping[str, float] | None, name: str, joint: str) -> str:
    """The noise a threshold was widened by, for the decision's one line."""
    se = (noise or {}).get(name, float("nan"))
    if not config.noise_z or math.isnan(se):
        return ""
    if joint == ", the gain":
        return f", se of the gain {se:.4f}"
    return f"{joint} {config.noise_z:g} x se {se:.4f}"


def _get(metrics: Mapping[str, float], key: str) -> float:
    value = metrics.get(key)
    return float(value) if value is not None else float("nan")
