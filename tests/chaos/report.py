"""The fault-injection figures of one session: one row per scenario, printed as a table."""

from __future__ import annotations

from dataclasses import dataclass

COLUMNS = (
    "scenario",
    "events",
    "faults",
    "lost",
    "duplicated",
    "reprocessed",
    "extra predictions",
    "stalled",
    "seconds",
)


@dataclass(frozen=True)
class ChaosRow:
    """What one scenario sent, what it injected, and what the stores and topics hold after."""

    scenario: str
    events: int
    faults: int
    lost: int  # valid transactions with no row in ClickHouse (FINAL)
    duplicated: int  # rows beyond one per transaction in a store's FINAL view
    reprocessed: int  # rows redone in another worker's store after a takeover (scenario d)
    extra_predictions: int  # predictions beyond one per transaction (at-least-once topic)
    seconds: float
    stalled: int = 0  # times the worker stopped, or stopped making progress, on its own

    def cells(self) -> tuple[str, ...]:
        return (
            self.scenario,
            str(self.events),
            str(self.faults),
            str(self.lost),
            str(self.duplicated),
            str(self.reprocessed),
            str(self.extra_predictions),
            str(self.stalled),
            f"{self.seconds:.1f}",
        )


ROWS: list[ChaosRow] = []


def record(row: ChaosRow) -> ChaosRow:
    ROWS.append(row)
    print("chaos: " + "  ".join(f"{c}={v}" for c, v in zip(COLUMNS, row.cells(), strict=True)))
    return row


def table(rows: list[ChaosRow]) -> list[str]:
    cells = [COLUMNS, *(r.cells() for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines
