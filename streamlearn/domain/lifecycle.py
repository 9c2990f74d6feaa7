"""The model lifecycle: the statuses a registered model moves through, and the one way to move it.

Each transition is a pure function returning the registry changes to make (the model the
decision is about first, then what it displaces); batch_retrain/registry.py applies them and
refuses a move the lifecycle does not allow (`check_move`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from streamlearn.foundation.errors import StreamlearnError


class ModelStatus(StrEnum):
    """A registered model's status (streamlearn.models.status)."""

    CANDIDATE = "candidate"  # trained and registered; not served
    SHADOW = "shadow"  # scored beside the champion until the live comparison decides
    CHAMPION = "champion"  # served
    RETIRED = "retired"  # served (or shadowed) once, since replaced
    REJECTED = "rejected"  # refused by the offline gate or the live comparison


# The moves the lifecycle allows; rewriting a row under its own status is always allowed.
# A retired or rejected model serves again only through a rollback (an operator's decision).
MOVES: dict[ModelStatus, frozenset[ModelStatus]] = {
    ModelStatus.CANDIDATE: frozenset(
        {ModelStatus.CHAMPION, ModelStatus.SHADOW, ModelStatus.REJECTED}
    ),
    ModelStatus.SHADOW: frozenset(
        {ModelStatus.CHAMPION, ModelStatus.REJECTED, ModelStatus.RETIRED}
    ),
    ModelStatus.CHAMPION: frozenset({ModelStatus.RETIRED}),
    ModelStatus.RETIRED: frozenset({ModelStatus.CHAMPION}),
    ModelStatus.REJECTED: frozenset({ModelStatus.CHAMPION}),
}


class LifecycleError(StreamlearnError):
    """A status change the model lifecycle does not allow."""


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One registry row to rewrite: the version, its new status and why."""

    version: str
    status: ModelStatus
    reason: str


@dataclass(frozen=True, slots=True)
class Transition:
    """The change of the model a decision is about, then the changes it causes for others."""

    subject: StatusChange
    displaced: tuple[StatusChange, ...] = ()

    def __iter__(self) -> Iterator[StatusChange]:
        yield self.subject
        yield from self.displaced


def check_move(version: str, before: str, after: str) -> None:
    """Raise LifecycleError unless a model may go from status `before` to `after`."""
    old, new = ModelStatus(before), ModelStatus(after)
    if old != new and new not in MOVES[old]:
        raise LifecycleError(f"model {version} cannot go from {old} to {new}")


def promote(version: str, *, replacing: str | None, reason: str, live: bool = False) -> Transition:
    """version becomes champion; the champion it replaces (if another) retires.

    live: promoted by the shadow's live comparison rather than by the offline gate.
    """
    how = f"shadow {version} (live)" if live else version
    return Transition(
        StatusChange(version, ModelStatus.CHAMPION, reason),
        _displace(replacing, version, f"replaced by {how}"),
    )


def enter_shadow(version: str, *, replacing: str | None, reason: str) -> Transition:
    """version is scored in shadow; the shadow it replaces (if another) retires."""
    return Transition(
        StatusChange(version, ModelStatus.SHADOW, reason),
        _displace(replacing, version, f"shadow replaced by {version}"),
    )


def reject(version: str, reason: str) -> Transition:
    """The gate (offline or live) refused version."""
    return Transition(StatusChange(version, ModelStatus.REJECTED, reason))


def retire(version: str, reason: str) -> Transition:
    """version leaves service without a successor of its own (e.g. a withdrawn shadow)."""
    return Transition(StatusChange(version, ModelStatus.RETIRED, reason))


def rollback(target: str, *, current: str | None) -> Transition:
    """target serves again; the champion it replaces (if any) retires."""
    if current == target:
        raise LifecycleError(f"{target} is already the champion")
    return Transition(
        StatusChange(target, ModelStatus.CHAMPION, f"rolled back from {current or 'none'}"),
        _displace(current, target, f"rolled back to {target}"),
    )


def _displace(previous: str | None, successor: str, reason: str) -> tuple[StatusChange, ...]:
    if previous is None or previous == successor:
        return ()
    return (StatusChange(previous, ModelStatus.RETIRED, reason),)
