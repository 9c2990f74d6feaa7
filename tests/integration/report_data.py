"""A small, realistic store for the report tests: two hours of scored transactions across three
model versions, their outcomes, the registry, online metrics, drift events, inference cost and
a few dead letters, written through Store.insert into the real tables."""

from __future__ import annotations

import datetime as dt

import numpy as np

from streamlearn.foundation.store import Store

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
VERSIONS = ("v20260301T120000-aaaa01", "v20260301T123000-bbbb02", "v20260301T132000-cccc03")
FEATURES = ("amount", "log_amount", "card_count_1h", "card_amount_ratio", "merchant_fraud_rate")
TXN_COLUMNS = (
    "transaction_id", "event_time", "card_id", "merchant_id", "amount", "currency", "country",
    "merchant_category", "channel", "device_id", "feature_version", "features", "score",
    "lightgbm_score", "river_score", "scores", "model_version", "shadow_version", "scored_at",
    "source_partition", "source_offset",
)  # fmt: skip
MODEL_COLUMNS = (
    "version", "name", "created_at", "updated_at", "status", "train_start", "train_end",
    "rows_train", "rows_valid", "feature_names", "feature_version", "metrics", "sha256",
    "reason", "train_cpu_s", "train_wall_s", "trigger", "decision", "compared_with",
)  # fmt: skip
METRIC_COLUMNS = (
    "time", "worker", "scorer", "labels", "positives", "auc_rolling", "auc", "logloss",
    "ap_rolling", "ap", "p_at_k_day", "p_at_k_day_rolling", "alerts_per_day",
)  # fmt: skip


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def served_version(at: dt.datetime) -> str:
    """Nothing for 10 minutes, the first model to minute 40, then the second (third rejected)."""
    if at < T0 + minutes(10):
        return "none"
    return VERSIONS[0] if at < T0 + minutes(40) else VERSIONS[1]


def seed(store: Store, n: int = 2400) -> None:
    rng = np.random.default_rng(7)
    _transactions(store, rng, n)
    _models(store)
    _online_metrics(store, rng)
    _drift(store)
    _usage(store)
    _dead_letters(store)


def _transactions(store: Store, rng: np.random.Generator, n: int) -> None:
    rows, outcomes = [], []
    fraud = rng.random(n) < 0.04
    for i in range(n):
        scored = T0 + dt.timedelta(seconds=3 * i, milliseconds=int(rng.integers(5, 60)))
        # The first 200 events are a replay of yesterday's traffic: a lag of about a day.
        event = scored - (dt.timedelta(days=1) if i < 200 else dt.timedelta(milliseconds=80))
        version = served_version(scored)
        model = float(np.clip(rng.beta(5, 2) if fraud[i] else rng.beta(1, 12), 0, 1))
        river = float(np.clip(model + rng.normal(0, 0.1), 0, 1))
        amount = float(rng.lognormal(3.5, 1.0))
        features = dict(zip(FEATURES, (amount, np.log1p(amount), *rng.random(3)), strict=True))
        lgbm = None if version == "none" else model
        rows.append([
            f"t{i:06d}", event, f"card-{i % 97:06d}", f"m-{i % 13:04d}", amount, "EUR", "FR",
            "5411", "web", None, "v3", features, lgbm if lgbm is not None else river, lgbm,
            river, {"lr": river, **({"lightgbm": lgbm} if lgbm is not None else {})}, version,
            None, scored, i % 3, i,
        ])  # fmt: skip
        if rng.random() < 0.7:  # 70% labelled; a handful reversed later (latest outcome wins)
            known = scored + minutes(5)
            outcomes.append([f"t{i:06d}", bool(fraud[i]), known, known, 0, i])
            if i % 400 == 0:
                outcomes.append([f"t{i:06d}", not fraud[i], known + minutes(30), known, 0, n + i])
    store.insert("transactions", rows, TXN_COLUMNS)
    store.insert(
        "outcomes",
        outcomes,
        ("transaction_id", "is_fraud", "event_time", "received_at", "source_partition",
         "source_offset"),
    )  # fmt: skip


def _models(store: Store) -> None:
    v1, v2, v3 = VERSIONS
    rows = [
        _model(v1, T0 + minutes(8), T0 + minutes(40), "retired", 2.5, "manual", "promote: first "
               "model", f"replaced by {v2}"),
        _model(v2, T0 + minutes(35), T0 + minutes(40), "champion", 3.1, "drift: 4 drift "
               "event(s)", f"promote: ap 0.61 vs champion {v1} 0.48 on 800 rows", "promoted"),
        _model(v3, T0 + minutes(80), T0 + minutes(82), "rejected", 2.9, "schedule", "reject: "
               f"ap 0.55 vs champion {v2} 0.61 on 900 rows", "gate refused"),
    ]  # fmt: skip
    store.insert("models", rows, MODEL_COLUMNS)


def _model(version, created, updated, status, cpu, trigger, decision, reason) -> list:
    metrics = {"holdout_auc": 0.9, "holdout_ap": 0.5}
    return [
        version, "fraud", created, updated, status, T0 - dt.timedelta(days=3), T0, 5000, 1000,
        list(FEATURES), "v3", metrics, "0" * 64, reason, cpu, cpu * 1.2, trigger, decision,
        VERSIONS[0] if version != VERSIONS[0] else "",
    ]  # fmt: skip


def _online_metrics(store: Store, rng: np.random.Generator) -> None:
    rows = []
    for m in range(15, 120):
        for worker in ("w1", "w2"):
            for j, scorer in enumerate(("served", "lightgbm", "lr", "blend")):
                auc = 0.93 - 0.04 * j - (0.25 if 60 <= m < 75 and scorer == "lightgbm" else 0)
                ap = auc - 0.35 + rng.normal(0, 0.01)
                labels = 10 * m + j
                rows.append([
                    T0 + minutes(m), worker, scorer, labels, labels // 25, auc, auc, 0.12,
                    ap, ap, ap + 0.1, ap + 0.08, 50,
                ])  # fmt: skip
    store.insert("online_metrics", rows, METRIC_COLUMNS)


def _drift(store: Store) -> None:
    rows = []
    for k, feature in enumerate(FEATURES[:4]):
        for m in (50 + 2 * k, 70 + 3 * k, 95 + k):
            rows.append([T0 + minutes(m), "data", feature, 0.25 + 0.3 * k + m / 200, 0.2, "", ""])
    rows.append([T0 + minutes(62), "concept", "lightgbm", 0.4, 0.01, VERSIONS[1], "fraud"])
    rows.append([T0 + minutes(64), "score", "served", 0.1, 0.002, VERSIONS[1], ""])
    columns = ("time", "kind", "subject", "statistic", "threshold", "model_version", "details")
    store.insert("drift_events", rows, columns)


def _usage(store: Store) -> None:
    rows = []
    for m in range(10, 120):
        version = served_version(T0 + minutes(m))
        if version != "none":
            for worker in ("w1", "w2"):
                rows.append([T0 + minutes(m), worker, version, 10, 0.05 + 0.002 * m])
    store.insert("model_usage", rows, ("time", "worker", "version", "predictions", "cpu_s"))


def _dead_letters(store: Store) -> None:
    errors = (
        ("decode", "not a single-object Avro message (magic b'\\x00\\x01')"),
        ("validate", "amount is negative (-3.0)"),
        ("validate", f"event_time {1_700_000_000_000 + 7} is more than 30 days old"),
    )
    rows = [
        [T0 + minutes(5 + 7 * k), "transactions", k % 3, 10_000 + k, stage, error, "", 40]
        for k, (stage, error) in enumerate(errors * 5)
    ]
    columns = (
        "time", "source_topic", "source_partition", "source_offset", "stage", "error", "key",
        "value_size",
    )  # fmt: skip
    store.insert("dead_letters", rows, columns)
