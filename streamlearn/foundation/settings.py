"""One frozen settings object, read from the environment (STREAMLEARN_*) or a .env file."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TOPICS = (
    "transactions",
    "outcomes",
    "predictions",
    "models",
    "dead-letters",
    "schemas",
    "drift-events",
)


class Settings(BaseSettings):
    """Everything a streamlearn process can be told; CLI flags override by building a copy."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMLEARN_", env_file=".env", extra="ignore", frozen=True
    )

    # Kafka
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = Field(
        None, description="Password of an encrypted client key (kafka_ssl_keyfile)."
    )
    topic_prefix: str = Field("", description="Prepended to every topic name.")

    # Schema registry (Confluent API): Confluent-framed input, and output if asked for
    schema_registry_url: str | None = Field(
        None,
        description="Schema registry base URL(s), comma-separated: with it, workers also decode "
        "the Confluent wire format (magic 0, schema id).",
    )
    schema_registry_username: str | None = Field(None, description="Registry basic-auth user.")
    schema_registry_password: SecretStr | None = Field(
        None, description="Registry basic-auth password."
    )
    schema_registry_ssl_cafile: Path | None = Field(
        None, description="CA bundle that signed the registry's TLS certificate."
    )
    schema_registry_ssl_certfile: Path | None = Field(
        None, description="Client certificate for a registry that asks for one (mutual TLS)."
    )
    schema_registry_ssl_keyfile: Path | None = Field(
        None, description="Key of schema_registry_ssl_certfile."
    )
    output_format: Literal["single-object", "confluent"] = Field(
        "single-object",
        description="How predictions and drift-events are written: Avro single-object encoding "
        "(the contract), or the Confluent wire format with schemas registered as <topic>-value.",
    )
    partitions: int = Field(4, ge=1, description="Partitions of topics streamlearn creates.")
    topic_replication_factor: int = Field(
        1,
        ge=1,
        description="Replication factor of every topic streamlearn (and Faust) creates: 1 for "
        "the local broker, 3 in production.",
    )
    topic_min_insync_replicas: int = Field(
        1,
        ge=1,
        description="min.insync.replicas of those topics: replicas that must have a write before "
        "an acks=all producer is answered (2 with a replication factor of 3).",
    )

    # ClickHouse
    clickhouse_url: str | None = Field(
        None, description="chdb://PATH (embedded) or http(s)://user:pw@host:8123/db."
    )
    state_dir: Path = Field(Path(".streamlearn"), description="Local state: broker, store.")

    # Worker
    worker_id: str = Field("worker-1", description="Faust app instance name for logs.")
    web_port: int = Field(6066, description="Worker HTTP port (status, store access).")
    web_bind: str = Field(
        "127.0.0.1",
        description="Address the worker's HTTP port listens on: 0.0.0.0 lets Prometheus and "
        "probes reach /metrics, /health and /ready (/status and /store/* stay local-only).",
    )
    metrics_enabled: bool = Field(
        True, description="Serve Prometheus metrics on /metrics (off: the scoring path skips them)."
    )
    ready_max_lag: int = Field(
        10_000,
        ge=0,
        description="/ready answers 503 while the assigned transactions partitions are further "
        "behind than this many events in total.",
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text, or one JSON object per line (for log shippers)."
    )
    batch_size: int = Field(500, ge=1, description="Max events scored per micro-batch.")
    batch_within: float = Field(0.05, gt=0, description="Max seconds to fill a micro-batch.")
    fetch_max_wait_ms: int = Field(
        10,
        ge=0,
        le=1500,
        description="How long the broker may hold a consumer fetch that finds no new records. "
        "Faust fixes 1,500 ms, and a fetch of idle partitions (outcomes) then holds new "
        "transactions back: at 1,000 events/s p99 1.9 s, against 0.15 s at 10 ms.",
    )
    merchant_risk_refresh_s: float = Field(
        300.0, gt=0, description="Seconds between merchant fraud-rate refreshes (daily buckets)."
    )
    max_event_age_days: int = Field(400, description="Older event times go to dead-letters.")
    max_event_future_s: int = Field(3600, description="Event times this far ahead are invalid.")
    clock: Literal["wall", "event"] = Field(
        "wall",
        description="Validation's now: the wall clock, or `event` (replays of history): the "
        "newest event time seen on the partition for the age limits, the wall clock for the "
        "future limit.",
    )
    learners: str = Field(
        "lr,hst", description="Online learners, a comma list of lr, hat, arf, hst (lr always runs)."
    )
    drift_psi_threshold: float = Field(
        0.2, gt=0, description="PSI above which a feature's recent distribution has drifted."
    )
    learner_checkpoint_s: float = Field(
        60.0, gt=0, description="Seconds between checkpoints of the learners' state."
    )
    usage_flush_s: float = Field(
        60.0, gt=0, description="Seconds between writes of inference cost to model_usage."
    )
    pending_max_entries: int = Field(
        500_000,
        ge=1,
        description="Scored transactions kept in memory for the label join (older: ClickHouse).",
    )
    label_horizon_days: float = Field(
        90.0,
        gt=0,
        description="An outcome known this long after its transaction is stored, not learned.",
    )
    early_outcome_wait_s: float = Field(
        3600.0,
        gt=0,
        description="How long an outcome waits for its unknown transaction before it is dropped.",
    )
    store_max_pending_rows: int = Field(
        20_000, ge=1, description="Scored rows not yet in ClickHouse before scoring waits."
    )
    shutdown_drain_s: float = Field(
        30.0, ge=0, description="On SIGTERM, seconds to finish and commit in-flight batches."
    )
    stall_log_ms: float = Field(
        0.0,
        ge=0,
        description="Record every event-loop callback that runs longer than this many ms (wall, "
        "loop CPU, where it ran) on /status under `stalls`; 0 is off (the loop is untouched).",
    )
    stall_log_path: Path | None = Field(
        None, description="With stall_log_ms: on stop, write every stall recorded to this JSON."
    )

    # Training
    label_maturity_days: float = Field(
        7.0, ge=0, description="A transaction's label counts once this much event time passed."
    )
    model_signing_key: SecretStr | None = Field(
        None, description="HMAC key: workers accept only models signed with it."
    )
    checkpoint_key: SecretStr | None = Field(
        None,
        description="HMAC key of learner checkpoints (else a random 0600 key file in the state "
        "dir); never the model signing key.",
    )
    query_max_execution_s: float = Field(
        60.0,
        gt=0,
        description="Longest an analyst query through the worker's web port may run (seconds).",
    )

    # Evaluation gate (batch_retrain/gate.py): the same rules offline (holdout) and live (shadow).
    gate_primary: Literal["ap", "auc", "p_at_k_day", "logloss", "ece"] = Field(
        "ap", description="The metric a challenger must gain on to be promoted."
    )
    gate_margin: float = Field(
        0.0, description="Least gain on the primary metric (negative: may trail by that much)."
    )
    gate_tol_auc: float = Field(0.01, ge=0, description="Most ROC AUC a challenger may lose.")
    gate_tol_p_at_k_day: float = Field(
        0.05, ge=0, description="Most precision among each day's top-k alerts it may lose."
    )
    gate_tol_logloss: float = Field(0.005, ge=0, description="Most log loss it may add.")
    gate_tol_ece: float = Field(0.01, ge=0, description="Most calibration error it may add.")

    # Shadow mode (batch_retrain/shadow.py)
    retrain_shadow: bool = Field(
        False, description="Publish a challenger that passed the gate as shadow, not champion."
    )
    shadow_min_labels: int = Field(
        1000, ge=1, description="Matured shadow-scored transactions before the live comparison."
    )
    shadow_min_positives: int = Field(
        10, ge=1, description="Fraud among them before the live comparison."
    )

    # Local broker
    broker_heap: str = Field("768m", description="Java heap of the local broker.")

    def __repr_args__(self):
        # The store and registry URLs may carry a password: mask it like the SecretStr fields.
        from streamlearn.foundation.store import redact_url

        for name, value in super().__repr_args__():
            masked = name in ("clickhouse_url", "schema_registry_url") and value
            yield name, redact_url(value) if masked else value

    @field_validator("web_bind")
    @classmethod
    def _ip_address(cls, v: str) -> str:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise ValueError(
                f"{v!r} is not an IP address: 127.0.0.1 (this machine only) or 0.0.0.0 (every "
                "interface)"
            ) from None
        return v

    @field_validator("topic_min_insync_replicas")
    @classmethod
    def _isr_within_replicas(cls, v: int, info: ValidationInfo) -> int:
        replicas = info.data.get("topic_replication_factor")
        if replicas is not None and v > replicas:
            raise ValueError(
                f"must not exceed topic_replication_factor ({replicas}): every acks=all write "
                "would be refused"
            )
        return v

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @property
    def store_url(self) -> str:
        return self.clickhouse_url or f"chdb://{self.state_dir / 'clickhouse'}"

    @property
    def embedded_store(self) -> bool:
        return self.store_url.startswith("chdb://")

    def topic(self, name: str) -> str:
        """The full topic name for one of TOPICS (prefix applied)."""
        return f"{self.topic_prefix}{name}"

    def with_overrides(self, **values: object) -> Settings:
        """A copy with CLI flags applied; None means 'not given'."""
        given = {k: v for k, v in values.items() if v is not None}
        return self.model_validate({**self.model_dump(), **given}) if given else self


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process read the same settings."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"STREAMLEARN_{name.upper()}"] = str(value)
    return env
