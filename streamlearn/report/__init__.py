"""`streamlearn report`'s engine: charts of what the store holds, as one self-contained HTML page
and a PNG per chart, built from ClickHouse queries only (`build_report`)."""

from .backtest import backtest_chart
from .build import build_report, report_html

__all__ = ["backtest_chart", "build_report", "report_html"]
