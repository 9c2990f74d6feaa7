"""The challenger beside the served champion, both scored on the same holdout rows.

The champion is read back from the compacted models topic rather than from the registry: the
topic holds exactly the bytes workers serve (verified as a worker would), and the registry
stays a small metadata table. When the topic's champion is missing, junk or refused, the
registry's champion as last served (streamlearn.model_artifacts) is the benchmark, so junk
under the champion key cannot open the gate. Only holdout rows newer than the champion's
training window count: the champion is never judged on rows it learned from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import lightgbm as lgb
import numpy as np

from streamlearn.batch_retrain.artifacts import registry_champions
from streamlearn.batch_retrain.metrics import evaluate, paired_gain_se
from streamlearn.batch_retrain.training_set import TrainingSet
from streamlearn.domain.release import load_booster, verify_release
from streamlearn.foundation.errors import ModelRejected
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore
from streamlearn.schemas import SchemaError

ChampionSource = Callable[[], Mapping[str, Any] | None]
NOTHING_PUBLISHED = "no champion published yet"


class Comparison(NamedTuple):
    """Both models' holdout metrics on `rows` fresh rows; champion None: nothing comparable
    (note says why); keep_champion: the champion saw this holdout, so it stays."""

    challenger: dict[str, float]
    champion: dict[str, float] | None
    version: str | None
    rows: int
    note: str
    keep_champion: bool = False
    # The paired-bootstrap standard error of each gain (ap, auc) on these rows.
    noise: dict[str, float] = {}


class Benchmark(NamedTuple):
    """The champion to beat: its verified release and its loaded booster."""

    record: Mapping[str, Any]
    booster: lgb.Booster


def champion_to_beat(
    source: ChampionSource | None,
    store: Store | RemoteStore,
    *,
    name: str,
    signing_key: bytes | None,
    features: Sequence[str],
) -> tuple[Benchmark | None, str]:
    """(the served champion, or None and why; or the registry's champion and why it is used)."""
    if source is None:
        return None, "offline: no served champion to compare with"
    try:
        record = source()
    except SchemaError as exc:
        record, problem = None, f"the published champion cannot be decoded ({exc})"
    else:
        problem = NOTHING_PUBLISHED
    if record is not None:
        try:
            return Benchmark(record, _servable(record, signing_key, features)), ""
        except ModelRejected as exc:
            problem = str(exc)
    for stored in registry_champions(store, name):
        try:
            booster = _servable(stored, signing_key, features)
        except ModelRejected:
            continue
        why = f"{problem}; compared with the registry's champion {stored['version']} instead"
        return Benchmark(stored, booster), why
    if record is None and problem == NOTHING_PUBLISHED:
        return None, problem
    return None, f"{problem}; replacing it"


def _servable(
    record: Mapping[str, Any], signing_key: bytes | None, features: Sequence[str]
) -> lgb.Booster:
    # A champion this deployment would refuse to serve is no benchmark.
    verify_release(record, signing_key=signing_key, known_features=features)
    return load_booster(record)


def compare(
    benchmark: Benchmark | None, note: str, ts: TrainingSet, challenger: lgb.Booster
) -> Comparison:
    """Both models' metrics on the holdout rows the champion never trained on."""
    if benchmark is None:
        return Comparison({}, None, None, 0, note)
    record = benchmark.record
    version = str(record.get("version", "?"))
    h = ts.holdout
    fresh = h.event_time > int(record["train_end"])
    if not 0 < int(h.y[fresh].sum()) < int(fresh.sum()):
        # The holdout lies after the challenger's window, so this happens only when the
        # champion learned from (nearly) all of it: it saw data as recent, and it stays.
        why = (
            f"champion {version} learned from this holdout ({int(fresh.sum())} rows after its "
            f"window): not comparable, it stays"
        )
        return Comparison({}, None, version, 0, why, keep_champion=True)
    X = h.X[fresh]
    columns = [ts.feature_names.index(f) for f in record["feature_names"]]
    theirs = benchmark.booster.predict(np.ascontiguousarray(X[:, columns]))
    ours = challenger.predict(X)
    y, w, days = h.y[fresh], h.w[fresh], h.event_time[fresh]
    return Comparison(
        _prefixed(evaluate(y, ours, w, days)),
        _prefixed(evaluate(y, theirs, w, days)),
        version,
        int(fresh.sum()),
        note,
        noise=paired_gain_se(y, np.asarray(ours), np.asarray(theirs), w),
    )


def _prefixed(metrics: dict[str, float]) -> dict[str, float]:
    return {f"holdout_{k}": v for k, v in metrics.items()}
