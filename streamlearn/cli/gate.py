"""The `--gate-*` flags shared by `retrain` and `models shadow-check`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import astuple, dataclass
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from streamlearn.batch_retrain.gate import GateConfig, gate_from_settings
from streamlearn.foundation.errors import ConfigError
from streamlearn.foundation.settings import Settings

GatePrimary = Annotated[
    str | None,
    typer.Option("--gate-primary", help="ap, auc, p_at_k_day, logloss or ece (GATE_PRIMARY)."),
]
GateMargin = Annotated[
    float | None,
    typer.Option("--gate-margin", help="Least gain on the primary metric (GATE_MARGIN)."),
]
TolAuc = Annotated[
    float | None, typer.Option("--gate-tol-auc", min=0, help="Most ROC AUC lost (GATE_TOL_AUC).")
]
TolTopK = Annotated[
    float | None,
    typer.Option("--gate-tol-p-at-k-day", min=0, help="Most top-k-per-day precision lost."),
]
TolLogloss = Annotated[
    float | None, typer.Option("--gate-tol-logloss", min=0, help="Most log loss added.")
]
TolEce = Annotated[
    float | None, typer.Option("--gate-tol-ece", min=0, help="Most calibration error added.")
]


@dataclass(frozen=True)
class GateFlags:
    """The --gate-* flags as given (None: the setting stands)."""

    primary: str | None = None
    margin: float | None = None
    tol_auc: float | None = None
    tol_p_at_k_day: float | None = None
    tol_logloss: float | None = None
    tol_ece: float | None = None

    def config(self, settings: Settings) -> GateConfig:
        """The gate from settings with these flags applied."""
        return gate_config(settings, *astuple(self))


# The flags in GateFlags' order, as the verbs' trailing keyword options.
_GATE_PARAMS = [
    inspect.Parameter(f"gate_{name}", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ann)
    for name, ann in (
        ("primary", GatePrimary),
        ("margin", GateMargin),
        ("tol_auc", TolAuc),
        ("tol_p_at_k_day", TolTopK),
        ("tol_logloss", TolLogloss),
        ("tol_ece", TolEce),
    )
]


def gate_options(verb: Callable[..., None]) -> Callable[..., None]:
    """Give a verb the --gate-* flags; it receives them as its `gate_flags: GateFlags` argument."""
    signature = inspect.signature(verb, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "gate_flags"]

    @functools.wraps(verb)
    def with_gate(*args: Any, **kwargs: Any) -> None:
        flags = GateFlags(*(kwargs.pop(p.name, None) for p in _GATE_PARAMS))
        verb(*args, gate_flags=flags, **kwargs)

    # typer reads the options from the signature: the verb's own, then the gate's.
    setattr(with_gate, "__signature__", signature.replace(parameters=[*own, *_GATE_PARAMS]))  # noqa: B010
    return with_gate


def gate_config(
    settings: Settings,
    primary: str | None,
    margin: float | None,
    tol_auc: float | None,
    tol_p_at_k_day: float | None,
    tol_logloss: float | None,
    tol_ece: float | None,
) -> GateConfig:
    """The gate from settings with any --gate-* flag applied."""
    try:
        given = settings.with_overrides(
            gate_primary=primary,
            gate_margin=margin,
            gate_tol_auc=tol_auc,
            gate_tol_p_at_k_day=tol_p_at_k_day,
            gate_tol_logloss=tol_logloss,
            gate_tol_ece=tol_ece,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(
            f"invalid gate setting --gate-{str(error['loc'][0])[5:].replace('_', '-')}: "
            f"{error['msg']}"
        ) from exc
    return gate_from_settings(given)
