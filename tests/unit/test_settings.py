"""Settings: STREAMLEARN_* environment, defaults, explicit overrides, secrets never printed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from streamlearn.foundation.settings import TOPICS, Settings, settings_env

SECRET = "hunter2-very-secret"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No STREAMLEARN_* variable and no .env file from the developer's shell."""
    for name in list(os.environ):
        if name.upper().startswith("STREAMLEARN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults(tmp_path: Path) -> None:
    s = Settings()
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.kafka_security_protocol == "PLAINTEXT" and s.topic_prefix == ""
    assert s.state_dir == (tmp_path / ".streamlearn").resolve() and s.state_dir.is_absolute()
    assert s.clickhouse_url is None
    assert s.store_url == f"chdb://{s.state_dir / 'clickhouse'}" and s.embedded_store
    assert s.model_signing_key is None and s.kafka_sasl_password is None


def test_store_url_prefers_an_explicit_clickhouse_url() -> None:
    s = Settings(clickhouse_url="http://default:pw@ch:8123/streamlearn")
    assert s.store_url == "http://default:pw@ch:8123/streamlearn" and not s.embedded_store


def test_environment_uses_the_streamlearn_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLEARN_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("STREAMLEARN_PARTITIONS", "12")
    monkeypatch.setenv("STREAMLEARN_BATCH_WITHIN", "0.25")
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "unprefixed:1")  # ignored
    monkeypatch.setenv("STREAMLEARN_NOT_A_SETTING", "x")  # ignored, no error
    s = Settings()
    assert s.kafka_bootstrap == "k1:9092,k2:9092" and s.partitions == 12
    assert s.batch_within == 0.25


def test_dotenv_file_in_the_working_directory_is_read(clean_env: Path) -> None:
    (clean_env / ".env").write_text("STREAMLEARN_TOPIC_PREFIX=dev-\n")
    assert Settings().topic("transactions") == "dev-transactions"


def test_state_dir_is_expanded_and_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    assert Settings(state_dir=Path("~/sl")).state_dir == Path("/home/someone/sl")
    assert Settings(state_dir="rel").state_dir == Path.cwd().resolve() / "rel"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("partitions", 0),
        ("batch_size", 0),
        ("batch_within", 0),
        ("merchant_risk_refresh_s", -1),
        ("label_maturity_days", -0.5),
        ("kafka_security_protocol", "TLS"),
        ("kafka_sasl_mechanism", "GSSAPI"),
    ],
)
def test_invalid_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_invalid_environment_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLEARN_PARTITIONS", "many")
    with pytest.raises(ValidationError, match="partitions"):
        Settings()


def test_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.partitions = 3  # type: ignore[misc]


def test_with_overrides_ignores_none() -> None:
    s = Settings(kafka_bootstrap="a:1", topic_prefix="p-")
    assert s.with_overrides() is s
    assert s.with_overrides(kafka_bootstrap=None, clickhouse_url=None) is s
    t = s.with_overrides(kafka_bootstrap="b:2", clickhouse_url=None, web_port=7000)
    assert (t.kafka_bootstrap, t.topic_prefix, t.web_port) == ("b:2", "p-", 7000)
    assert t.clickhouse_url is None and s.kafka_bootstrap == "a:1"


def test_with_overrides_validates() -> None:
    with pytest.raises(ValidationError):
        Settings().with_overrides(partitions=0)
    assert Settings().with_overrides(state_dir="x").state_dir == Path.cwd().resolve() / "x"


def test_explicit_values_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLEARN_KAFKA_BOOTSTRAP", "from-env:1")
    monkeypatch.setenv("STREAMLEARN_WEB_PORT", "7001")
    s = Settings()
    assert s.kafka_bootstrap == "from-env:1"
    t = s.with_overrides(kafka_bootstrap="from-flag:2")
    assert t.kafka_bootstrap == "from-flag:2" and t.web_port == 7001
    assert Settings(kafka_bootstrap="from-arg:3").kafka_bootstrap == "from-arg:3"


def full_settings(tmp_path: Path) -> Settings:
    return Settings(
        kafka_bootstrap="k1:9093,k2:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password=SECRET,
        kafka_ssl_cafile=tmp_path / "ca.pem",
        topic_prefix="staging.",
        partitions=6,
        clickhouse_url=f"https://svc:{SECRET}@ch.internal:8443/streamlearn",
        state_dir=tmp_path / "state",
        worker_id="w-7",
        web_port=7077,
        batch_size=250,
        batch_within=0.02,
        merchant_risk_refresh_s=12.5,
        max_event_age_days=30,
        max_event_future_s=60,
        label_maturity_days=0.25,
        model_signing_key=SECRET,
        broker_heap="1g",
    )


def test_settings_env_round_trip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = full_settings(tmp_path)
    env = settings_env(original)
    assert all(k.startswith("STREAMLEARN_") and isinstance(v, str) for k, v in env.items())
    assert env["STREAMLEARN_MODEL_SIGNING_KEY"] == SECRET  # the child needs the real value
    assert "STREAMLEARN_KAFKA_SSL_CERTFILE" not in env  # None is left unset
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert Settings() == original


def test_settings_env_round_trip_of_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings()
    for key, value in settings_env(original).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir("/")  # a child started elsewhere reads the same absolute state_dir
    assert Settings() == original


def test_secrets_are_masked_when_printed(tmp_path: Path) -> None:
    s = full_settings(tmp_path)
    assert isinstance(s.model_signing_key, SecretStr)
    assert isinstance(s.kafka_sasl_password, SecretStr)
    s = s.with_overrides(clickhouse_url="https://ch.internal:8443/streamlearn")
    for text in (repr(s), str(s), f"{s}", repr(s.model_signing_key), str(s.kafka_sasl_password)):
        assert SECRET not in text
    assert s.model_signing_key.get_secret_value() == SECRET
    assert SECRET not in s.model_dump_json()


def test_a_password_in_the_clickhouse_url_is_masked_when_printed(tmp_path: Path) -> None:
    s = full_settings(tmp_path)
    assert SECRET not in repr(s) and SECRET not in str(s)


def test_topic_names_carry_the_prefix() -> None:
    s = Settings(topic_prefix="t1-")
    assert [s.topic(t) for t in TOPICS][:2] == ["t1-transactions", "t1-outcomes"]
    assert "dead-letters" in TOPICS and "models" in TOPICS


def test_ssl_key_password_reaches_librdkafka_and_stays_masked() -> None:
    from streamlearn.foundation.kafka import confluent_config
    from streamlearn.foundation.settings import Settings

    s = Settings(kafka_security_protocol="SSL", kafka_ssl_key_password="key-secret-1")
    assert confluent_config(s)["ssl.key.password"] == "key-secret-1"
    assert "key-secret-1" not in repr(s) and "key-secret-1" not in str(s)


def test_query_refuses_anything_but_reads_before_sending() -> None:
    from streamlearn.foundation.store.access import read_only_refusal

    for sql in (
        "SELECT 1",
        " with x as (select 1) select * from x",
        "SHOW TABLES",
        "EXPLAIN SELECT 1",
    ):
        assert read_only_refusal(sql) is None
    for sql in (
        "INSERT INTO t VALUES (1)",
        "alter table t delete where 1",
        "DROP TABLE t",
        "SET a=1",
        "",
    ):
        refusal = read_only_refusal(sql)
        assert refusal is not None and "read-only" in refusal
