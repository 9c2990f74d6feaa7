"""The report's SQL: one read-only query per data set a chart draws, over `streamlearn` tables.

Every query takes the server-side parameters of `parameters()`; ReplacingMergeTree tables are
read with FINAL so a replayed batch counts once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

# Reports on a store with no `since` start from here (before any streamlearn data).
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Labelled rows fetched for the curves and histograms: a deterministic sample (by transaction
# id hash) keeps the report's memory bounded on a store with years of history.
MAX_LABELLED_ROWS = 500_000

# What the header says about the data: scored transactions in the window.
RANGE = """
SELECT count() AS transactions, min(scored_at) AS first_scored, max(scored_at) AS last_scored
FROM streamlearn.transactions FINAL
WHERE scored_at >= {since:DateTime64(3, 'UTC')}
"""

# Online metrics per scorer and minute. Each worker scores its own labels, so workers'
# snapshots of one minute are averaged weighted by their label counts (NaN rows left out).
ONLINE_METRICS = """
SELECT toStartOfMinute(time) AS minute, scorer,
       sum(labels) AS label_count,
       sumIf(auc_rolling * labels, isFinite(auc_rolling))
           / nullIf(sumIf(labels, isFinite(auc_rolling)), 0) AS auc_rolling,
       sumIf(ap_rolling * labels, isFinite(ap_rolling))
           / nullIf(sumIf(labels, isFinite(ap_rolling)), 0) AS ap_rolling,
       sumIf(p_at_k_day_rolling * labels, isFinite(p_at_k_day_rolling))
           / nullIf(sumIf(labels, isFinite(p_at_k_day_rolling)), 0) AS p_at_k_day_rolling,
       max(alerts_per_day) AS alerts_per_day
FROM streamlearn.online_metrics
WHERE time >= {since:DateTime64(3, 'UTC')}
GROUP BY minute, scorer
ORDER BY minute, scorer
"""

# Every drift detection (data, score, concept) in the window.
DRIFT_EVENTS = """
SELECT time, kind, subject, statistic, threshold, model_version
FROM streamlearn.drift_events FINAL
WHERE time >= {since:DateTime64(3, 'UTC')}
ORDER BY time
"""

# The model version that served most of each minute's transactions: a change is a swap
# (promotion, rollback, first model) as traffic saw it.
SERVED_VERSIONS = """
SELECT toStartOfMinute(scored_at) AS minute, topK(1)(model_version)[1] AS model_version,
       count() AS transactions
FROM streamlearn.transactions FINAL
WHERE scored_at >= {since:DateTime64(3, 'UTC')}
GROUP BY minute
ORDER BY minute
"""

# Labelled transactions: the served score, the serving model's own score, the latest outcome
# (the `labels` view: argMax over `outcomes` FINAL).
LABELLED_SCORES = """
SELECT t.model_version AS model_version, t.score AS score,
       coalesce(t.lightgbm_score, t.score) AS model_score, l.is_fraud AS is_fraud
FROM streamlearn.transactions AS t FINAL
INNER JOIN streamlearn.labels AS l ON l.transaction_id = t.transaction_id
WHERE t.scored_at >= {since:DateTime64(3, 'UTC')}
ORDER BY cityHash64(t.transaction_id)
LIMIT {max_rows:UInt32}
"""

# Data drift detections only: the PSI of one feature when it crossed the threshold.
DATA_DRIFT = """
SELECT time, subject AS feature, statistic AS psi, threshold
FROM streamlearn.drift_events FINAL
WHERE kind = 'data' AND time >= {since:DateTime64(3, 'UTC')}
ORDER BY time
"""

# The registry (one row per version, its latest status) with the span each version served,
# as the transactions it scored show it.
MODELS = """
SELECT m.version AS version, m.status AS status, m.created_at AS created_at,
       m.updated_at AS updated_at, m.trigger AS trigger, m.decision AS decision,
       m.live_decision AS live_decision, m.reason AS reason,
       if(s.version = '', NULL, s.first_served) AS first_served,
       if(s.version = '', NULL, s.last_served) AS last_served
FROM (SELECT * FROM streamlearn.models FINAL) AS m
LEFT JOIN (
    SELECT model_version AS version, min(scored_at) AS first_served, max(scored_at) AS last_served
    FROM streamlearn.transactions FINAL
    GROUP BY model_version
) AS s ON s.version = m.version
WHERE m.updated_at >= {since:DateTime64(3, 'UTC')} OR m.status IN ('champion', 'shadow')
ORDER BY m.created_at, m.version
"""

# Cumulative inference CPU per version and minute (summed from the version's first minute,
# whatever `since`), beside its training CPU (NULL for a version the registry lacks: "none").
INFERENCE_COST = """
SELECT version, minute, cum_cpu_s, cum_predictions, train_cpu_s
FROM (
    SELECT u.version AS version, u.minute AS minute,
           sum(u.cpu) OVER w AS cum_cpu_s, sum(u.n) OVER w AS cum_predictions,
           if(m.version = '', NULL, m.train_cpu_s) AS train_cpu_s
    FROM (
        SELECT version, toStartOfMinute(time) AS minute, sum(cpu_s) AS cpu,
               sum(predictions) AS n
        FROM streamlearn.model_usage
        GROUP BY version, minute
    ) AS u
    LEFT JOIN (SELECT version, train_cpu_s FROM streamlearn.models FINAL) AS m
        ON m.version = u.version
    WINDOW w AS (PARTITION BY u.version ORDER BY u.minute
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
WHERE minute >= toStartOfMinute({since:DateTime64(3, 'UTC')})
ORDER BY version, minute
"""

# Dead letters per minute by stage and reason: the error's text with numbers as N, up to its
# first detail ("amount is negative (-3.0)" -> "validate: amount is negative").
DEAD_LETTERS = """
SELECT toStartOfMinute(time) AS minute, stage,
       concat(stage, ': ', leftUTF8(trimBoth(replaceRegexpOne(
           replaceRegexpAll(error, '[0-9][0-9.eE+-]*', 'N'), '[:(\\\\[{].*$', '')), 60)) AS reason,
       count() AS letters
FROM streamlearn.dead_letters FINAL
WHERE time >= {since:DateTime64(3, 'UTC')}
GROUP BY minute, stage, reason
ORDER BY minute
"""

# Transactions scored per minute, and the lag from event time to scoring (p50, p99 in ms):
# the only per-event timing the store holds.
THROUGHPUT = """
SELECT toStartOfMinute(scored_at) AS minute, count() AS transactions,
       quantile(0.5)(dateDiff('millisecond', event_time, scored_at)) AS lag_p50_ms,
       quantile(0.99)(dateDiff('millisecond', event_time, scored_at)) AS lag_p99_ms
FROM streamlearn.transactions FINAL
WHERE scored_at >= {since:DateTime64(3, 'UTC')}
GROUP BY minute
ORDER BY minute
"""

# Every query by name, as build.py runs them.
QUERIES: dict[str, str] = {
    "range": RANGE,
    "online_metrics": ONLINE_METRICS,
    "drift_events": DRIFT_EVENTS,
    "served_versions": SERVED_VERSIONS,
    "labelled_scores": LABELLED_SCORES,
    "data_drift": DATA_DRIFT,
    "models": MODELS,
    "inference_cost": INFERENCE_COST,
    "dead_letters": DEAD_LETTERS,
    "throughput": THROUGHPUT,
}


def parameters(since: dt.datetime | None) -> dict[str, Any]:
    """The server-side parameters the queries use, as JSON-safe values (the worker's query
    proxy sends them as JSON): `since` as UTC text, a naive `since` taken as UTC."""
    start = since or EPOCH
    start = start.replace(tzinfo=dt.UTC) if start.tzinfo is None else start.astimezone(dt.UTC)
    return {"since": start.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], "max_rows": MAX_LABELLED_ROWS}


def used_parameters(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters `sql` names, so no server ever sees one it did not ask for."""
    return {k: v for k, v in params.items() if "{" + k + ":" in sql}
