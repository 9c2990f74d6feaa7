"""The retrain job, the only place that knows the order of its steps.

build the training set -> train -> register as candidate (and keep the release) -> score the
served champion and the challenger on the same holdout rows -> the gate (batch_retrain/gate.py)
decides -> publish as champion (or, with shadow=True and a champion in service, as shadow:
batch_retrain/shadow.py then compares it live) -> record the decision and statuses in the
registry.

The champion is read back from the compacted models topic rather than from the registry:
the topic holds exactly the bytes workers serve (verified like a worker would), and the
registry stays a small metadata table that analysts can query without megabytes of model
text per row. Offline (publish=False) there is nothing served to compare with unless a
champion_source is given. Only holdout rows newer than the champion's training window count,
so the champion is never judged on rows it learned from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import lightgbm as lgb
import numpy as np

from streamlearn.batch_retrain import registry
from streamlearn.batch_retrain.artifacts import save_release
from streamlearn.batch_retrain.gate import (
    DEFAULT_GATE,
    Decision,
    GateConfig,
    gate_from_settings,
    judge,
)
from streamlearn.batch_retrain.metrics import evaluate
from streamlearn.batch_retrain.train import train
from streamlearn.batch_retrain.training_set import TrainingSet, build_training_set
from streamlearn.domain.release import build_release, load_booster, make_version, verify_release
from streamlearn.foundation.errors import ModelRejected
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore
from streamlearn.learners.drift import reference_bins
from streamlearn.schemas import SchemaError

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
) -> Decision:
    """The gate (batch_retrain.gate.judge) on holdout metric maps of both models.

    Both maps must come from the same holdout rows; champion None means there is nothing
    comparable (note says why) and the challenger is promoted.
    """
    return judge(
        challenger,
        champion,
        config=config,
        champion_version=champion_version,
        compared_rows=compared_rows,
        note=note,
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
    champion_source: Callable[[], Mapping[str, Any] | None] | None = None,
    shadow: bool = False,
    train_options: Mapping[str, Any] | None = None,
    **training_set_options: Any,
) -> RetrainResult:
    """Retrain from the store's history; publish the model as champion if the gate agrees.

    shadow=True publishes a model that passed the gate as shadow instead (status shadow): the
    workers score with it beside the champion until the live comparison decides. With no
    champion in service there is nothing to compare live with, and it becomes champion.

    gate None takes the gate from settings (STREAMLEARN_GATE_*); train_options go to
    batch_retrain.train.train (params, num_boost_round, ...).
    Raises NotEnoughData (too little matured history), StoreUnavailable, BrokerUnavailable.
    """
    t0 = time.perf_counter()
    gate = gate or gate_from_settings(settings)
    key = settings.model_signing_key
    signing_key = key.get_secret_value().encode() if key else None

    ts = build_training_set(
        store,
        maturity_days=settings.label_maturity_days,
        maturity_s=maturity_s,
        as_of_ms=as_of_ms,
        **training_set_options,
    )
    result = train(ts, **{"num_threads": num_threads, **(train_options or {})})
    release = build_release(
        result.booster,
        feature_names=ts.feature_names,
        train_start=ts.train_start,
        train_end=ts.train_end,
        metrics=result.metrics,
        signing_key=signing_key,
        reason=reason,
        name=name,
        # The train split the booster learned from, weighted back to the population when
        # legit rows were sampled: the workers measure data drift against it.
        reference_bins=reference_bins(ts.train.X, ts.feature_names, weights=ts.train.w),
    )
    while registry.get(store, release["version"]) is not None:
        # The same model bytes retrained within one second: the next second keeps it unique.
        created = release["created_at"] + 1000
        version = make_version(release["sha256"], registry.from_ms(created))
        release = {**release, "created_at": created, "version": version}
    version = release["version"]
    registry.register(
        store,
        registry.ModelEntry(
            version=version,
            name=name,
            created_at=registry.from_ms(release["created_at"]),
            status="candidate",
            train_start=registry.from_ms(ts.train_start),
            train_end=registry.from_ms(ts.train_end),
            rows_train=ts.train.rows,
            rows_valid=ts.valid.rows,
            feature_names=ts.feature_names,
            sha256=release["sha256"],
            metrics=result.metrics,
            reason=reason,
            train_cpu_s=result.train_cpu_s,
            train_wall_s=result.train_wall_s,
            trigger=reason,
            gate=gate.describe(),
        ),
    )
    save_release(store, release)

    t1 = time.perf_counter()
    source = champion_source
    if source is None and publish:
        from streamlearn.batch_retrain.publish import fetch_release

        source = partial(fetch_release, settings, name)
    cmp = _compare_with_champion(source, ts, result.booster, signing_key)
    decision = (
        Decision(False, cmp.note, cmp.version)
        if cmp.keep_champion
        else decide(
            cmp.challenger,
            cmp.champion,
            champion_version=cmp.version,
            config=gate,
            note=cmp.note,
            compared_rows=cmp.rows,
        )
    )
    champion_s = time.perf_counter() - t1

    t2 = time.perf_counter()
    status, published = "candidate", False
    recorded = {
        "decision": decision.reason,
        "compared_with": decision.champion_version or "",
        "compared_rows": decision.compared_rows,
        "gate_metrics": decision.challenger_metrics,
        "champion_metrics": decision.champion_metrics,
    }
    if not decision.promote:
        status = "rejected"
        registry.update(store, version, status=status, reason=decision.reason, **recorded)
    elif publish and shadow and decision.champion_metrics:
        from streamlearn.batch_retrain.publish import publish_release

        previous = registry.current_shadow(store, name)
        publish_release(settings, {**release, "role": "shadow"})
        published, status = True, "shadow"
        why = f"passed the offline gate; in shadow beside {decision.champion_version}"
        registry.update(store, version, status=status, reason=why, **recorded)
        if previous is not None and previous.version != version:
            registry.set_status(store, previous.version, "retired", f"shadow replaced by {version}")
    elif publish:
        from streamlearn.batch_retrain.publish import publish_release

        publish_release(settings, release)
        published, status = True, "champion"
        previous = registry.current_champion(store, name)
        registry.update(store, version, status=status, reason=decision.reason, **recorded)
        if previous is not None and previous.version != version:
            registry.set_status(store, previous.version, "retired", f"replaced by {version}")
    else:
        registry.update(store, version, **recorded)
    publish_s = time.perf_counter() - t2

    return RetrainResult(
        version=version,
        status=status,
        published=published,
        decision=decision,
        metrics=result.metrics,
        rows=dict(ts.counts),
        timings={
            "build_s": ts.build_s,
            "train_cpu_s": result.train_cpu_s,
            "train_wall_s": result.train_wall_s,
            "champion_s": champion_s,
            "publish_s": publish_s,
            "total_s": time.perf_counter() - t0,
        },
        as_of=ts.as_of,
        train_start=ts.train_start,
        train_end=ts.train_end,
    )


class _Comparison(NamedTuple):
    challenger: dict[str, float]
    champion: dict[str, float] | None
    version: str | None
    rows: int
    note: str
    keep_champion: bool = False


def _compare_with_champion(
    source: Callable[[], Mapping[str, Any] | None] | None,
    ts: TrainingSet,
    challenger: lgb.Booster,
    signing_key: bytes | None,
) -> _Comparison:
    """Both models' metrics on the holdout rows the champion never trained on."""

    def nothing(note: str, version: str | None = None) -> _Comparison:
        return _Comparison({}, None, version, 0, note)

    if source is None:
        return nothing("offline: no served champion to compare with")
    try:
        record = source()
    except SchemaError as exc:
        return nothing(f"the published champion cannot be decoded ({exc}); replacing it")
    if record is None:
        return nothing("no champion published yet")
    version = str(record.get("version", "?"))
    try:
        # A champion this deployment would refuse to serve is no benchmark.
        verify_release(record, signing_key=signing_key, known_features=ts.feature_names)
        booster = load_booster(record)
    except ModelRejected as exc:
        return nothing(f"{exc}; replacing it", version)
    h = ts.holdout
    champion_end = int(record["train_end"])
    fresh = h.event_time > champion_end
    if not 0 < int(h.y[fresh].sum()) < int(fresh.sum()):
        # The holdout lies after the challenger's window, so this happens only when the
        # champion learned from (nearly) all of it: it saw data as recent, and it stays.
        return _Comparison(
            {},
            None,
            version,
            0,
            f"champion {version} learned from this holdout ({int(fresh.sum())} rows after its "
            f"window): not comparable, it stays",
            keep_champion=True,
        )
    X = h.X[fresh]
    columns = [ts.feature_names.index(f) for f in record["feature_names"]]
    theirs = booster.predict(np.ascontiguousarray(X[:, columns]))
    ours = challenger.predict(X)
    y, w = h.y[fresh], h.w[fresh]

    def prefixed(m: dict[str, float]) -> dict[str, float]:
        return {f"holdout_{k}": v for k, v in m.items()}

    days = h.event_time[fresh]
    return _Comparison(
        prefixed(evaluate(y, ours, w, days)),
        prefixed(evaluate(y, theirs, w, days)),
        version,
        int(fresh.sum()),
        "",
    )
