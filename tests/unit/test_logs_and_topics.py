"""JSON log lines (one object per line, extras and tracebacks kept), and what every created
topic carries: the replication factor and min.insync.replicas of the settings."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pydantic import ValidationError

from streamlearn.foundation import logs
from streamlearn.foundation.kafka import confluent_config, new_topic, topic_config
from streamlearn.foundation.settings import TOPICS, Settings


def emit(formatter: logging.Formatter, fn: str, *args: object, **kwargs: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        getattr(logger, fn)(*args, **kwargs)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_json_line_has_time_level_logger_message_and_extras() -> None:
    out = emit(logs.JsonFormatter(), "warning", "store down %s", "again", extra={"partition": 3})
    assert out.count("\n") == 1
    line = json.loads(out)
    assert line["level"] == "WARNING"
    assert line["logger"] == "tests.logs"
    assert line["message"] == "store down again"
    assert line["partition"] == 3
    assert line["time"].endswith("+00:00")


def test_a_traceback_and_a_newline_in_the_message_stay_on_one_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        out = emit(logs.JsonFormatter(), "exception", "failed on\n%r", object())
    assert out.count("\n") == 1
    line = json.loads(out)
    assert "ValueError: bad\nvalue" in line["exc_info"]
    assert line["message"].startswith("failed on\n")


def test_logging_config_is_one_stderr_handler_in_the_format() -> None:
    as_json = logs.logging_config("json", "info")
    assert as_json["root"] == {"level": "INFO", "handlers": ["default"]}
    assert as_json["formatters"]["default"] == {"()": logs.JsonFormatter}
    assert logs.logging_config("text", logging.ERROR)["root"]["level"] == "ERROR"
    assert "format" in logs.logging_config("text")["formatters"]["default"]


def test_json_logs_route_librdkafka_through_python_logging() -> None:
    assert "logger" not in confluent_config(Settings())
    conf = confluent_config(Settings(log_format="json"))
    assert conf["logger"] is logging.getLogger("librdkafka")


def test_every_topic_carries_the_replication_factor_and_the_write_quorum() -> None:
    settings = Settings(topic_replication_factor=3, topic_min_insync_replicas=2, topic_prefix="p-")
    for name in TOPICS:
        topic = new_topic(settings, name)
        assert topic.topic == f"p-{name}"
        assert topic.replication_factor == 3
        assert topic.config["min.insync.replicas"] == "2"
    assert new_topic(settings, "models").config["cleanup.policy"] == "compact"
    assert new_topic(settings, "transactions").num_partitions == settings.partitions
    assert topic_config(Settings()) == {"min.insync.replicas": "1"}


def test_a_quorum_larger_than_the_replicas_is_a_setting_error() -> None:
    with pytest.raises(ValidationError, match="must not exceed topic_replication_factor"):
        Settings(topic_replication_factor=1, topic_min_insync_replicas=2)


def test_every_cli_verb_logs_json_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """load_settings (what every verb, retrain included, starts with) installs the handler."""
    from streamlearn.cli.common import load_settings

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setenv("STREAMLEARN_LOG_FORMAT", "json")
    try:
        load_settings()
        (handler,) = root.handlers
        assert isinstance(handler.formatter, logs.JsonFormatter)
        assert root.level == logging.WARNING
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_the_bind_address_is_an_ip_address() -> None:
    assert Settings().web_bind == "127.0.0.1"
    assert Settings(web_bind="0.0.0.0").web_bind == "0.0.0.0"
    assert Settings(web_bind="::").web_bind == "::"
    with pytest.raises(ValidationError, match="is not an IP address"):
        Settings(web_bind="localhost")
