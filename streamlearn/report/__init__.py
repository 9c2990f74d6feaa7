"""`streamlearn report`'s engine: charts of what the store holds, as one self-contained HTML page
and a PNG per chart, built from ClickHouse queries only (`build_report`)."""

from .build import build_report

__all__ = ["build_report"]
