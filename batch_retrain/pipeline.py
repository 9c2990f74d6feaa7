"""The retrain job, the only place that knows the order of its steps.

build the training set (training_set.py) -> train (train.py: early stopping on validation
picks the rounds) -> refit: the same rounds boosted again on train and validation (the judged
model) -> score the served champion and the judged model on the same holdout rows
(compare.py) -> the gate decides (gate.py) -> a model to publish is boosted again, same
rounds, on every row, the holdout included (the newest matured rows carry the newest
compromised terminals and cards) -> register as candidate and keep the release (candidate.py)
-> serve as champion, or with shadow=True and a champion in service as shadow (serving.py;
shadow.py then compares it live), or reject -> the registry records the decision and the
lifecycle transition. The registry keeps the judged model's holdout metrics;
metrics["refit_rows"] says on how many rows the registered booster learned.

Why the judged model is refit too: the champion served was refit on every row up to its own
retrain, so a challenger that learned only the oldest 70% of rows knew less recent fraud than
the champion it was judged against (one replay: AP 0.415 vs 0.532 on the holdout; refit on
train and validation, 0.553: the newer model, like for like, led in every week).

Offline (publish=False) there is nothing served to compare with unless a champion_source is
given, and nothing is published.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from streamlearn.batch_retrain import registry
from streamlearn.batch_retrain.candidate import register_candidate
from streamlearn.batch_retrain.compare import ChampionSource, Comparison, champion_to_beat, compare
from streamlearn.batch_retrain.gate import (
    DEFAULT_GATE,
    Decision,
    GateConfig,
    gate_from_settings,
    judge,
)
from streamlearn.batch_retrain.publish import fetch_release
from streamlearn.batch_retrain.serving import serve, signing_key
from streamlearn.batch_retrain.train import TrainResult, refit_on_every_row, train
from streamlearn.batch_retrain.training_set import TrainingSet, build_training_set
from streamlearn.domain import lifecycle
from streamlearn.domain.lifecycle import ModelStatus
from streamlearn.domain.release import ReleaseRole
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore

__all__ = ["Decision", "GateConfig", "RetrainResult", "decide", "run_retrain"]


@dataclass(frozen=True)
class RetrainResult:
    """What one retrain produced: the version, its final status and everything measured."""

    version: str
    status: str
    published: bool
    decision: Decision
    metrics: dict[str, float]
    rows: dict[str, int]
    timings: dict[str, float]
    as_of: int
    train_start: int
    train_end: int


def decide(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    champion_version: str | None = None,
    config: GateConfig = DEFAULT_GATE,
    note: str = "",
    compared_rows: int = 0,
    noise: Mapping[str, float] | None = None,
) -> Decision:
    """The gate (batch_retrain.gate.judge) on holdout metric maps of both models.

    Both maps must come from the same holdout rows; champion None means there is nothing
    comparable (note says why) and the challenger is promoted. noise: the standard error of
    each metric's gain on those rows (compare.py).
    """
    return judge(
        challenger,
        champion,
        config=config,
        champion_version=champion_version,
        compared_rows=compared_rows,
        note=note,
        noise=noise,
    )


def run_retrain(
    settings: Settings,
    store: Store | RemoteStore,
    *,
    as_of_ms: int | None = None,
    maturity_s: float | None = None,
    publish: bool = True,
    reason: str = "manual",
    name: str = "fraud",
    num_threads: int = 2,
    gate: GateConfig | None = None,
    champion_source: ChampionSource | None = None,
    shadow: bool = False,
    train_options: Mapping[str, Any] | None = None,
    refit: bool = True,
    **training_set_options: Any,
) -> RetrainResult:
    """Retrain from the store's history; publish the model as champion if the gate agrees.

    shadow=True publishes a model that passed the gate as shadow instead (status shadow): the
    workers score with it beside the champion until the live comparison decides. With no
    champion in service there is nothing to compare live with, and it becomes champion.

    gate None takes the gate from settings (STREAMLEARN_GATE_*); train_options go to
    batch_retrain.train.train (params, num_boost_round, ...). refit: the gate judges the
    chosen rounds boosted on train and validation, and a published model is boosted on every
    row (refit_on_every_row); False judges and publishes the early-stopped booster itself.
    Raises NotEnoughData (too little matured history), StoreUnavailable, BrokerUnavailable.
    """
    t0 = time.perf_counter()
    gate = gate or gate_from_settings(settings)
    ts = build_training_set(
        store,
        maturity_days=settings.label_maturity_days,
        maturity_s=maturity_s,
        as_of_ms=as_of_ms,
        **training_set_options,
    )
    result = train(ts, **{"num_threads": num_threads, **(train_options or {})})
    if refit:
        result = refit_on_every_row(ts, result, num_threads=num_threads, holdout=False)
    t1 = time.perf_counter()
    if champion_source is None and publish:
        champion_source = partial(fetch_release, settings, name)
    decision = _judge(settings, store, ts, result, champion_source, gate, name)
    t2 = time.perf_counter()
    if refit and publish and decision.promote:
        result = refit_on_every_row(ts, result, num_threads=num_threads)
    release = register_candidate(
        store,
        ts,
        result,
        signing_key=signing_key(settings),
        reason=reason,
        name=name,
        gate=gate.describe(),
    )
    status = _settle(settings, store, release, decision, publish=publish, shadow=shadow)
    timings = {"champion_s": t2 - t1, "publish_s": time.perf_counter() - t2}
    return _result(release, status, decision, ts, result, timings, t0)


def _judge(
    settings: Settings,
    store: Store | RemoteStore,
    ts: TrainingSet,
    result: TrainResult,
    source: ChampionSource | None,
    gate: GateConfig,
    name: str,
) -> Decision:
    """The gate's decision on the challenger against the champion to beat."""
    benchmark, note = champion_to_beat(
        source,
        store,
        name=name,
        signing_key=signing_key(settings),
        features=ts.feature_names,
    )
    cmp: Comparison = compare(benchmark, note, ts, result.booster)
    if cmp.keep_champion:
        return Decision(False, cmp.note, cmp.version)
    return decide(
        cmp.challenger,
        cmp.champion,
        champion_version=cmp.version,
        config=gate,
        note=cmp.note,
        compared_rows=cmp.rows,
        noise=cmp.noise,
    )


def _settle(
    settings: Settings,
    store: Store | RemoteStore,
    release: dict[str, Any],
    decision: Decision,
    *,
    publish: bool,
    shadow: bool,
) -> ModelStatus:
    """Serve, shadow or reject the candidate as decided; the registry records why."""
    version, name = release["version"], release["name"]
    recorded: dict[str, Any] = {
        "decision": decision.reason,
        "compared_with": decision.champion_version or "",
        "compared_rows": decision.compared_rows,
        "gate_metrics": decision.challenger_metrics,
        "champion_metrics": decision.champion_metrics,
    }
    if not decision.promote:
        registry.apply(store, lifecycle.reject(version, decision.reason), **recorded)
        return ModelStatus.REJECTED
    if not publish:
        registry.update(store, version, **recorded)
        return ModelStatus.CANDIDATE
    if shadow and decision.champion_metrics:
        previous = registry.current_shadow(store, name)
        why = f"passed the offline gate; in shadow beside {decision.champion_version}"
        moves = lifecycle.enter_shadow(
            version, replacing=previous.version if previous else None, reason=why
        )
        serve(settings, store, release, moves, role=ReleaseRole.SHADOW, recorded=recorded)
        return ModelStatus.SHADOW
    previous = registry.current_champion(store, name)
    moves = lifecycle.promote(
        version, replacing=previous.version if previous else None, reason=decision.reason
    )
    serve(settings, store, release, moves, recorded=recorded)
    return ModelStatus.CHAMPION


def _result(
    release: dict[str, Any],
    status: ModelStatus,
    decision: Decision,
    ts: TrainingSet,
    result: TrainResult,
    timings: dict[str, float],
    t0: float,
) -> RetrainResult:
    return RetrainResult(
        version=release["version"],
        status=status,
        published=status in (ModelStatus.CHAMPION, ModelStatus.SHADOW),
        decision=decision,
        metrics=result.metrics,
        rows=dict(ts.counts),
        timings={
            "build_s": ts.build_s,
            "train_cpu_s": result.train_cpu_s,
            "train_wall_s": result.train_wall_s,
            **timings,
            "total_s": time.perf_counter() - t0,
        },
        as_of=ts.as_of,
        train_start=ts.train_start,
        train_end=int(release["train_end"]),
    )
