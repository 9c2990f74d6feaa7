"""One micro-batch of outcomes: store them, then learn from the features logged at scoring time."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from schemas import SchemaError
from streamlearn.errors import InvalidRecord
from streamlearn.store import batch_token
from streams.context import WorkerContext
from streams.dead_letters import DeadLetter
from streams.features import FEATURE_NAMES
from streams.pending import Scored
from streams.validate import check_outcome

OUTCOME_COLUMNS = (
    "transaction_id",
    "is_fraud",
    "event_time",
    "received_at",
    "source_partition",
    "source_offset",
)
DAY_MS = 86_400_000
LEARN_SLICE = 50
# Outcomes may come weeks after the transaction: their own event time may be older than
# a transaction's allowed age, and never more than a clock-skew ahead.
OUTCOME_MAX_AGE_DAYS = 800

LOOKUP_SQL = """
SELECT transaction_id, merchant_id, toUnixTimestamp64Milli(event_time) AS event_ms,
       arrayMap(n -> features[n], {names:Array(String)}) AS vector,
       scores, score
FROM streamlearn.transactions
WHERE transaction_id IN {ids:Array(String)}
LIMIT 1 BY transaction_id
"""


async def learn_batch(ctx: WorkerContext, events: list[Any]) -> None:
    """Store every valid outcome; learn once per transaction from what was served for it."""
    settings = ctx.settings
    now_ms = int(time.time() * 1000)
    received = dt.datetime.now(dt.UTC)
    rows: list[list[Any]] = []
    outcomes: list[dict[str, Any]] = []
    for event in events:
        msg = event.message
        try:
            outcome = ctx.outcome_serde.decode(msg.value)
            check_outcome(
                outcome, now_ms, OUTCOME_MAX_AGE_DAYS * DAY_MS, settings.max_event_future_s * 1000
            )
        except (SchemaError, InvalidRecord) as exc:
            stage = "decode" if isinstance(exc, SchemaError) else "validate"
            ctx.dlq.send(
                DeadLetter(
                    msg.topic, msg.partition, msg.offset, stage, str(exc), msg.key, msg.value
                )
            )
            continue
        if ctx.online.covers(msg.partition, msg.offset):
            ctx.online.skipped_outcomes += 1  # learned before the restored checkpoint was saved
        else:
            outcomes.append(outcome)
        rows.append(
            [
                outcome["transaction_id"],
                outcome["is_fraud"],
                dt.datetime.fromtimestamp(outcome["event_time"] / 1000, dt.UTC),
                received,
                msg.partition,
                msg.offset,
            ]
        )
    if rows:
        first, last = events[0].message.offset, events[-1].message.offset
        token = batch_token(
            "outcome", events[0].message.partition, first, last, (r[0] for r in rows)
        )
        await ctx.sink.insert("outcomes", rows, OUTCOME_COLUMNS, token)
        ctx.stats.outcomes += len(rows)
        await _learn(ctx, outcomes)
    for event in events:  # the offsets a checkpoint taken from now on covers
        ctx.online.mark_learned(event.message.partition, event.message.offset)
    ctx.dlq.flush()


async def _learn(ctx: WorkerContext, outcomes: list[dict[str, Any]]) -> None:
    now_ms = int(time.time() * 1000)
    found: dict[str, Scored] = {}
    missing: list[str] = []
    for outcome in outcomes:
        txn_id = outcome["transaction_id"]
        if txn_id in found:
            continue
        scored = ctx.pending.pop(txn_id)
        if scored is not None:
            found[txn_id] = scored
        else:
            missing.append(txn_id)
    if missing:
        found.update(await _lookup(ctx, missing))
        # The scoring agent may have scored some of them while the lookup ran (not yet in
        # the store): take them from pending now, or they would be parked as early for good.
        for txn_id in missing:
            if txn_id not in found:
                scored = ctx.pending.pop(txn_id)
                if scored is not None:
                    found[txn_id] = scored

    for i, outcome in enumerate(outcomes):
        if i % LEARN_SLICE == LEARN_SLICE - 1:
            # Learning shares the event loop with scoring: let waiting batches be scored.
            await asyncio.sleep(0)
        txn_id = outcome["transaction_id"]
        is_fraud = bool(outcome["is_fraud"])
        previous = ctx.learned.get(txn_id)
        if previous is not None:
            # Learned once already: a repeat is counted, a contradiction too; neither relearns.
            if previous == is_fraud:
                ctx.stats.duplicate_outcomes += 1
            else:
                ctx.stats.conflicting_outcomes += 1
            continue
        # The transaction may have been scored since the lookup (scoring runs while this
        # loop yields): take it from pending before parking the outcome as early.
        scored = found.get(txn_id) or ctx.pending.pop(txn_id)
        if scored is None:
            ctx.early.put(txn_id, is_fraud)
            ctx.stats.early_outcomes += 1
            continue
        ctx.online.learn(scored.features, scored.scores, is_fraud, now_ms)
        ctx.scorecard.update(is_fraud, scored.scores, scored.event_time)
        ctx.merchant_risk.add(scored.merchant_id, outcome["event_time"], is_fraud)
        ctx.learned.put(txn_id, is_fraud)
        ctx.stats.learned += 1


async def _lookup(ctx: WorkerContext, ids: list[str]) -> dict[str, Scored]:
    """Features and scores logged for transactions no longer held in memory."""
    _cols, rows = await ctx.sink.call(
        ctx.store.query_rows, LOOKUP_SQL, {"names": list(FEATURE_NAMES), "ids": ids}
    )
    out: dict[str, Scored] = {}
    for txn_id, merchant, event_ms, vector, scores, score in rows:
        out[txn_id] = Scored(list(vector), {**scores, "served": score}, merchant, int(event_ms))
    return out
