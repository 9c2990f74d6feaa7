"""`python -m tests.chaos.faulty_worker DOWN_FILE`: the real worker, whose store inserts fail
while DOWN_FILE exists (the chaos suite's store outage)."""

from __future__ import annotations

import sys
from pathlib import Path

from streamlearn.foundation.settings import Settings
from streamlearn.streams.worker import run_worker
from tests.store_faults import faulty_store

if __name__ == "__main__":
    run_worker(Settings(), open_store=faulty_store(Path(sys.argv[1])))
