"""@gate_options: the --gate-* flags reach the verb as one GateFlags, after its own options."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from streamlearn.cli.gate import GateFlags, gate_options


def test_the_gate_flags_reach_the_verb_in_order() -> None:
    seen: list[tuple[int, GateFlags]] = []

    @gate_options
    def verb(every: int = 1, *, gate_flags: GateFlags) -> None:
        seen.append((every, gate_flags))

    app = typer.Typer()
    app.command()(verb)
    args = ["--every", "3", "--gate-tol-ece", "0.3", "--gate-primary", "auc"]
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    assert seen == [(3, GateFlags(primary="auc", tol_ece=0.3))]
    help_text = CliRunner().invoke(app, ["--help"]).output
    assert help_text.index("--every") < help_text.index("--gate-primary")
    assert help_text.index("--gate-primary") < help_text.index("--gate-tol-ece")
