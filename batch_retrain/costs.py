"""What each model version cost: training CPU (registry) beside serving CPU (model_usage).

One query: per version, training CPU seconds, inference CPU seconds and predictions so far,
CPU seconds per 1,000 predictions, and the first minute at which the running sum of
inference CPU reached the training CPU (NULL while it has not).
"""

from __future__ import annotations

import pandas as pd

from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore

COST_SQL = """
SELECT version,
       any(train_cpu_s) AS train_cpu,
       sum(minute_cpu) AS inference_cpu_s,
       sum(minute_predictions) AS predictions,
       if(predictions > 0, 1000 * inference_cpu_s / predictions, nan) AS cpu_s_per_1k,
       if(countIf(minute_predictions > 0 AND running_cpu >= train_cpu_s) > 0,
          toDateTime64(minIf(minute, minute_predictions > 0 AND running_cpu >= train_cpu_s),
                       3, 'UTC'),
          NULL) AS inference_passed_training_at
FROM (
    SELECT m.version AS version, m.train_cpu_s AS train_cpu_s, u.minute AS minute,
           u.cpu AS minute_cpu, u.n AS minute_predictions,
           sum(u.cpu) OVER (PARTITION BY m.version ORDER BY u.minute
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running_cpu
    FROM (SELECT version, train_cpu_s FROM streamlearn.models FINAL) AS m
    LEFT JOIN (
        SELECT version, toStartOfMinute(time) AS minute, sum(cpu_s) AS cpu, sum(predictions) AS n
        FROM streamlearn.model_usage
        GROUP BY version, minute
    ) AS u ON u.version = m.version
)
GROUP BY version
ORDER BY version DESC
"""


def model_costs(store: Store | RemoteStore) -> pd.DataFrame:
    """One row per registered version: train_cpu, inference_cpu_s, predictions,
    cpu_s_per_1k, inference_passed_training_at."""
    return store.query_df(COST_SQL)
