"""A bug, not bad input: the worker stops, and whatever is unacked is processed again."""

from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger(__name__)


def fatal(stage: str, exc: BaseException) -> None:
    """A bug, not bad input: stop the worker; unacked events are processed again on restart."""
    log.critical("%s failed, stopping the worker: %r", stage, exc, exc_info=exc)
    os.kill(os.getpid(), signal.SIGTERM)
    # If the graceful stop hangs, leave anyway: nothing unacked is lost, only redone.
    timer = threading.Timer(30.0, os._exit, args=(70,))
    timer.daemon = True
    timer.start()
