"""Log lines of every streamlearn process (worker, retrain, CLI, and Faust's own): plain text,
or with STREAMLEARN_LOG_FORMAT=json one JSON object per line for log shippers."""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.config
from typing import Any

# What every LogRecord carries: anything else on a record came from `extra=` and is kept.
_RECORD_FIELDS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)
TEXT_FORMAT = "[%(asctime)s] %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the process
    and thread, the exception's traceback as one string, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "thread": record.threadName,
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                line[key] = value
        # A message or extra holding a newline stays on one line: json escapes it.
        return json.dumps(line, default=str, ensure_ascii=False)


def logging_config(log_format: str, level: str | int = "WARNING") -> dict[str, Any]:
    """A logging.config.dictConfig for the root logger: one stderr handler in `log_format`.

    Faust's worker takes it as its `logging_config`, so its own loggers (and aiokafka's) write
    the same lines as ours.
    """
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    level_name = logging.getLevelName(level) if isinstance(level, int) else level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level_name, "handlers": ["default"]},
    }


def configure(log_format: str, level: str | int = "WARNING") -> None:
    """Apply logging_config to this process (idempotent: the root handler is replaced)."""
    logging.config.dictConfig(logging_config(log_format, level))
