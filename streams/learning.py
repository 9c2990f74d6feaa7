"""One micro-batch of outcomes: store them, then learn from the features logged at scoring time."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.foundation.dead_letters import DeadLetter
from streamlearn.foundation.errors import InvalidRecord
from streamlearn.foundation.store import batch_token
from streamlearn.schemas import SchemaError
from streamlearn.streams.context import WorkerContext
from streamlearn.streams.pending import Parked, Scored, pack_scored
from streamlearn.streams.validate import check_outcome

OUTCOME_COLUMNS = (
    "transaction_id",
    "is_fraud",
    "event_time",
    "received_at",
    "source_partition",
    "source_offset",
)
UNLEARNED_COLUMNS = (
    "transaction_id",
    "is_fraud",
    "outcome_time",
    "transaction_time",
    "reason",
    "source_partition",
    "source_offset",
)
EXPIRED = "expired"  # known more than label_horizon_days after its transaction
UNKNOWN = "unknown"  # its transaction was not scored within early_outcome_wait_s
RESOLVE_MAX = 5000  # parked outcomes looked up in the store per sweep
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
    outcomes: list[tuple[dict[str, Any], int, int]] = []
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
            outcomes.append((outcome, msg.partition, msg.offset))
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
        await flush_unlearned(ctx)
    for event in events:  # the offsets a checkpoint taken from now on covers
        ctx.online.mark_learned(event.message.partition, event.message.offset)
    ctx.dlq.flush()


async def _learn(ctx: WorkerContext, outcomes: list[tuple[dict[str, Any], int, int]]) -> None:
    now_ms = int(time.time() * 1000)
    found: dict[str, Scored] = {}
    missing: list[str] = []
    for outcome, _, _ in outcomes:
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

    for i, (outcome, partition, offset) in enumerate(outcomes):
        if i % LEARN_SLICE == LEARN_SLICE - 1:
            # Learning shares the event loop with scoring: let waiting batches be scored.
            await asyncio.sleep(0)
        _learn_or_park(ctx, found, outcome, partition, offset, now_ms)
        # Covered as soon as it is in the learners' state: a checkpoint taken while this loop
        # yields then covers exactly what its learners hold, so after a crash the rest of the
        # batch is redelivered and learned, and the first part is skipped as a replay.
        ctx.online.mark_learned(partition, offset)


def _learn_or_park(
    ctx: WorkerContext,
    found: dict[str, Scored],
    outcome: dict[str, Any],
    partition: int,
    offset: int,
    now_ms: int,
) -> None:
    txn_id = outcome["transaction_id"]
    is_fraud = bool(outcome["is_fraud"])
    if _repeat(ctx, txn_id, is_fraud):
        return
    # The transaction may have been scored since the lookup (scoring runs while this
    # loop yields): take it from pending before parking the outcome as early.
    scored = found.get(txn_id) or ctx.pending.pop(txn_id)
    if scored is None:
        parked = Parked(is_fraud, outcome["event_time"], now_ms, partition, offset)
        pushed_out = ctx.early.put(txn_id, parked)
        ctx.stats.early_outcomes += 1
        if pushed_out is not None:
            _unlearned(ctx, pushed_out[0], pushed_out[1], None, UNKNOWN)
        return
    learn_one(ctx, txn_id, scored, is_fraud, outcome["event_time"], partition, offset, now_ms)


def _repeat(ctx: WorkerContext, txn_id: str, is_fraud: bool) -> bool:
    """Learned once already: a repeat is counted, a contradiction too; neither relearns."""
    previous = ctx.learned.get(txn_id)
    if previous is None:
        return False
    if previous == is_fraud:
        ctx.stats.duplicate_outcomes += 1
    else:
        ctx.stats.conflicting_outcomes += 1
    return True


def learn_one(
    ctx: WorkerContext,
    txn_id: str,
    scored: Scored,
    is_fraud: bool,
    outcome_ms: int,
    partition: int,
    offset: int,
    now_ms: int,
) -> bool:
    """Learn one outcome from what was served for its transaction, unless it is past the label
    horizon (then it is recorded as expired). True if learned."""
    if outcome_ms - scored.event_time > ctx.settings.label_horizon_days * DAY_MS:
        parked = Parked(is_fraud, outcome_ms, now_ms, partition, offset)
        _unlearned(ctx, txn_id, parked, scored.event_time, EXPIRED)
        return False
    ctx.online.learn(scored.features, scored.scores, is_fraud, now_ms)
    ctx.scorecard.update(is_fraud, scored.scores, scored.event_time)
    ctx.merchant_risk.add(scored.merchant_id, outcome_ms, is_fraud)
    ctx.learned.put(txn_id, is_fraud)
    ctx.stats.learned += 1
    return True


def learn_parked(ctx: WorkerContext, txn_id: str, scored: Scored, now_ms: int) -> None:
    """The transaction of a parked outcome is scored (or found in the store): learn it now."""
    parked = ctx.early.pop(txn_id)
    if parked is None or _repeat(ctx, txn_id, parked.is_fraud):
        return
    learn_one(
        ctx,
        txn_id,
        scored,
        parked.is_fraud,
        parked.outcome_ms,
        parked.partition,
        parked.offset,
        now_ms,
    )


def _unlearned(
    ctx: WorkerContext, txn_id: str, parked: Parked, txn_ms: int | None, reason: str
) -> None:
    if reason == EXPIRED:
        ctx.stats.expired_outcomes += 1
    else:
        ctx.stats.unknown_outcomes += 1
    ctx.unlearned.append(
        [
            txn_id,
            parked.is_fraud,
            _utc(parked.outcome_ms),
            None if txn_ms is None else _utc(txn_ms),
            reason,
            parked.partition,
            parked.offset,
        ]
    )


async def resolve_parked(ctx: WorkerContext) -> int:
    """Outcomes still waiting for their transaction: learn those whose transaction is now in
    the store (scored by another worker, or before a crash), give up on those that waited
    longer than early_outcome_wait_s (recorded as unknown); store the unlearned rows."""
    parked = ctx.early.oldest(RESOLVE_MAX)
    if parked:
        found = await _lookup(ctx, [txn_id for txn_id, _ in parked])
        now_ms = int(time.time() * 1000)
        wait_ms = ctx.settings.early_outcome_wait_s * 1000
        for txn_id, p in parked:
            if ctx.early.get(txn_id) is not p:
                continue  # learned by scoring while the lookup ran
            scored = found.get(txn_id)
            if scored is not None:
                learn_parked(ctx, txn_id, scored, now_ms)
            elif now_ms - p.parked_ms > wait_ms:
                ctx.early.pop(txn_id)
                _unlearned(ctx, txn_id, p, None, UNKNOWN)
    return await flush_unlearned(ctx)


async def flush_unlearned(ctx: WorkerContext) -> int:
    """Store the expired/unknown outcomes decided so far (idempotent: keyed by origin)."""
    rows = list(ctx.unlearned)
    if not rows:
        return 0
    token = batch_token(
        "unlearned", rows[0][5], rows[0][6], rows[-1][6], (f"{r[0]}/{r[4]}/{r[6]}" for r in rows)
    )
    await ctx.sink.insert("unlearned_outcomes", rows, UNLEARNED_COLUMNS, token)
    del ctx.unlearned[: len(rows)]
    return len(rows)


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


async def _lookup(ctx: WorkerContext, ids: list[str]) -> dict[str, Scored]:
    """Features and scores logged for transactions no longer held in memory."""
    _cols, rows = await ctx.sink.read(
        ctx.store.query_rows, LOOKUP_SQL, {"names": list(FEATURE_NAMES), "ids": ids}
    )
    out: dict[str, Scored] = {}
    for txn_id, merchant, event_ms, vector, scores, score in rows:
        out[txn_id] = pack_scored(vector, {**scores, "served": score}, merchant, int(event_ms))
    return out
