"""One micro-batch of transactions from one partition: decode, features, score, publish, log."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import numpy as np

from streamlearn.domain.features import FEATURE_NAMES, FEATURE_VERSION, compute
from streamlearn.foundation.dead_letters import DeadLetter
from streamlearn.foundation.errors import InvalidRecord
from streamlearn.schemas import SchemaError
from streamlearn.streams.champion import ModelSlot
from streamlearn.streams.context import WorkerContext
from streamlearn.streams.learning import learn_parked
from streamlearn.streams.pending import pack_scored
from streamlearn.streams.validate import check_transaction
from streamlearn.streams.writer import ScoredBatch, flush

TXN_COLUMNS = (
    "transaction_id",
    "event_time",
    "card_id",
    "merchant_id",
    "amount",
    "currency",
    "country",
    "merchant_category",
    "channel",
    "device_id",
    "feature_version",
    "features",
    "score",
    "lightgbm_score",
    "river_score",
    "scores",
    "model_version",
    "shadow_version",
    "scored_at",
    "source_partition",
    "source_offset",
)
DAY_MS = 86_400_000
REPLAY_MEMORY = 8  # transaction ids per card remembered to spot an upstream resend


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000.0, dt.UTC)


def _already_applied(card: list[Any], partition: int, offset: int, txn: dict[str, Any]) -> bool:
    """A Kafka replay (offset at or below the card's last applied one on this partition) or
    an upstream resend (a transaction id among the card's last ones)."""
    if len(card) > 7 and card[7][0] == partition and offset <= card[7][1]:
        return True
    return txn["transaction_id"] in card[6]


async def score_batch(ctx: WorkerContext, stream: Any, events: list[Any]) -> None:
    """Score every valid transaction of one partition's batch; dead-letter the rest.

    Returns once the predictions and dead letters are acknowledged by Kafka; the rows and the
    state changes go to the writer, which acks the events when those are durable too.
    """
    t_start = time.perf_counter()
    settings = ctx.settings
    now_ms = int(time.time() * 1000)
    max_age = settings.max_event_age_days * DAY_MS
    max_future = settings.max_event_future_s * 1000
    decode = ctx.txn_serde.decode
    # Read and write the table's store directly: the changelog is written once per key per
    # batch, after the batch is durable (see _write_changelog), not once per event.
    state = ctx.table.data
    rate = ctx.merchant_risk.rate
    dirty: dict[str, tuple[int, list[Any]]] = {}

    valid: list[tuple[dict[str, Any], int, int]] = []
    published_at: list[float] = []
    vectors: list[list[float]] = []
    for event in events:
        msg = event.message
        try:
            txn = decode(msg.value)
            check_transaction(txn, now_ms, max_age, max_future)
        except (SchemaError, InvalidRecord) as exc:
            stage = "decode" if isinstance(exc, SchemaError) else "validate"
            ctx.dlq.send(
                DeadLetter(
                    msg.topic, msg.partition, msg.offset, stage, str(exc), msg.key, msg.value
                )
            )
            continue
        card_key = "c:" + txn["card_id"]
        merchant_key = f"m:{txn['merchant_id']}@{msg.partition}"
        card = state.get(card_key)
        if card is not None and _already_applied(card, msg.partition, msg.offset, txn):
            # Its prediction and row were made when it was first applied (the state reaches
            # the changelog only after they are durable): scoring it again from a state that
            # already holds it would log other features, so it is skipped and counted.
            ctx.stats.replayed_transactions += 1
            continue
        merchant = state.get(merchant_key)
        features, new_card, new_merchant = compute(
            txn, card, merchant, rate(txn["merchant_id"], txn["event_time"])
        )
        new_card[6] = [*new_card[6][-(REPLAY_MEMORY - 1) :], txn["transaction_id"]]
        new_card[7:] = [[msg.partition, msg.offset]]
        state[card_key] = new_card
        state[merchant_key] = new_merchant
        dirty[card_key] = (msg.partition, new_card)
        dirty[merchant_key] = (msg.partition, new_merchant)
        valid.append((txn, msg.partition, msg.offset))
        published_at.append(msg.timestamp)
        vectors.append(features)

    rows = (
        await _publish(ctx, valid, np.asarray(vectors, dtype=np.float64), vectors, published_at)
        if valid
        else []
    )
    ctx.dlq.flush()
    await ctx.writer.submit(
        ScoredBatch(
            stream,
            list(events),
            events[0].message.partition,
            rows,
            dirty,
            [t["transaction_id"] for t, _, _ in valid],
        )
    )
    ctx.stats.batches += 1
    ctx.stats.process_ms.append((time.perf_counter() - t_start) * 1000)
    ctx.stats.mark()


def _score_metered(ctx: WorkerContext, slot: ModelSlot | None, matrix: np.ndarray) -> Any:
    """The slot's scores (None without a slot), its CPU time counted against its version.

    thread_time, not process_time: the store and Kafka client threads keep running meanwhile,
    and LightGBM scores on this thread (num_threads=1).
    """
    if slot is None:
        return None
    cpu0 = time.thread_time()
    scores = slot.score(matrix)
    ctx.stats.record_inference(slot.version, time.thread_time() - cpu0, len(matrix))
    return scores


async def _publish(
    ctx: WorkerContext,
    valid: list[tuple[dict[str, Any], int, int]],
    matrix: np.ndarray,
    vectors: list[list[float]],
    published_at: list[float],
) -> list[list[Any]]:
    """Score the batch, publish one Prediction per transaction; return the rows to store."""
    champion, shadow = ctx.champion.slots()
    lgbm = _score_metered(ctx, champion, matrix)
    shadow_scores = _score_metered(ctx, shadow, matrix)
    version = champion.version if champion is not None else "none"
    shadow_version = shadow.version if shadow is not None else None
    now_s = time.time()
    scored_at = int(now_s * 1000)
    # Every learner's score, the blend's, and the served one (blend once trained, else champion,
    # else lr); hst learns from the batch and the drift monitors see it (streams/online.py).
    columns, served = ctx.online.score(
        matrix, lgbm, scored_at, version, champion.record if champion is not None else None
    )
    component_lists = {name: col.tolist() for name, col in columns.items()}
    encode = ctx.prediction_serde.encode
    produce = ctx.producer.produce
    topic = ctx.settings.topic("predictions")
    rows = []
    latencies = ctx.stats.latencies_ms
    scored_at_dt = _utc(scored_at)
    for i, (txn, partition, offset) in enumerate(valid):
        scores = {name: float(col[i]) for name, col in component_lists.items()}
        if shadow_scores is not None:
            scores["shadow"] = float(shadow_scores[i])
        score = float(served[i])
        txn_id = txn["transaction_id"]
        record = {
            "transaction_id": txn_id,
            "event_time": txn["event_time"],
            "score": score,
            "model_version": version,
            "lightgbm_score": scores.get("lightgbm"),
            "river_score": scores[ctx.learner.name],
            "scores": scores,
            "scored_at": scored_at,
            "card_id": txn["card_id"],
            "shadow_version": shadow_version,
        }
        value = encode(record)
        while True:
            try:
                produce(topic, key=txn_id.encode(), value=value)
                break
            except BufferError:
                ctx.producer.poll(0.05)
        rows.append(
            [
                txn_id,
                _utc(txn["event_time"]),
                txn["card_id"],
                txn["merchant_id"],
                float(txn["amount"]),
                txn.get("currency") or "",
                txn.get("country"),
                txn.get("merchant_category"),
                txn.get("channel"),
                txn.get("device_id"),
                FEATURE_VERSION,
                dict(zip(FEATURE_NAMES, vectors[i], strict=True)),
                score,
                scores.get("lightgbm"),
                scores[ctx.learner.name],
                scores,
                version,
                shadow_version,
                scored_at_dt,
                partition,
                offset,
            ]
        )
        # Latency from the upstream's publish (Kafka timestamp) to the score: replays and
        # late events carry old event times, so event time would not measure the pipeline.
        latencies.append((now_s, scored_at - published_at[i] * 1000))
        logged = pack_scored(
            vectors[i], {**scores, "served": score}, txn["merchant_id"], txn["event_time"]
        )
        if ctx.early.get(txn_id) is not None:
            learn_parked(ctx, txn_id, logged, scored_at)  # its outcome came first
        else:
            ctx.pending.put(txn_id, logged)

    # Predictions are acknowledged before the batch goes to the writer (and is acked there).
    await flush(ctx)
    ctx.stats.predictions += len(valid)
    return rows
