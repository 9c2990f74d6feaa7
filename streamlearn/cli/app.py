"""The `streamlearn` command: its verbs (each module loaded only when it runs, so `--help`
stays fast), `--version`, and one exit status per kind of error, printed as one line."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

from streamlearn import __version__
from streamlearn.foundation.errors import (
    BrokerUnavailable,
    ConfigError,
    ModelRejected,
    NotEnoughData,
    Refused,
    StoreBusy,
    StoreUnavailable,
    StreamlearnError,
    WorkerUnavailable,
)

try:  # typer >= 0.25 vendors its own click
    from typer._click import Command, Context, HelpFormatter
    from typer._click import exceptions as cli_exc
except ImportError:  # older typer uses click itself
    from click import Command, Context, HelpFormatter  # type: ignore[assignment]
    from click import exceptions as cli_exc  # type: ignore[no-redef]

HELP = "Real-time fraud scoring on Kafka with continuous learning."


@dataclass(frozen=True)
class Verb:
    """Where a verb lives (module and attribute: a function, or a typer app for a group) and
    its one-line help, shown by `streamlearn --help` without importing the module."""

    module: str
    attr: str
    help: str


VERBS: dict[str, Verb] = {
    "up": Verb(
        "streamlearn.cli.broker",
        "up",
        "Start the local Kafka broker (reused if running) and create the topics.",
    ),
    "down": Verb(
        "streamlearn.cli.broker",
        "down",
        "Stop the local Kafka broker started by `up` (nothing else).",
    ),
    "worker": Verb(
        "streamlearn.cli.worker",
        "worker",
        "Score transactions and learn from outcomes until stopped (Ctrl-C / SIGTERM).",
    ),
    "simulate": Verb(
        "streamlearn.cli.simulate",
        "simulate",
        "Produce realistic transactions and their outcomes (the upstream systems).",
    ),
    "retrain": Verb(
        "streamlearn.cli.retrain",
        "retrain",
        "Train LightGBM on the history in ClickHouse and publish it to the workers.",
    ),
    "models": Verb(
        "streamlearn.cli.models",
        "app",
        "The model registry: versions, status, metrics, costs; rollback, shadow-check.",
    ),
    "status": Verb(
        "streamlearn.cli.status",
        "status",
        "What the running worker, Kafka (reachability, consumer lag) and the store hold now.",
    ),
    "query": Verb(
        "streamlearn.cli.query",
        "query",
        "Run read-only SQL against the analysts' tables (through the worker if it owns chdb).",
    ),
    "report": Verb(
        "streamlearn.cli.report",
        "report",
        "Charts of what the store holds, as one self-contained HTML page.",
    ),
    "replay": Verb(
        "streamlearn.cli.replay",
        "replay",
        "Backtest a file of past transactions through the production path, week by week.",
    ),
    "schemas": Verb("streamlearn.cli.schemas", "app", "Writer schemas producers may use."),
    "demo": Verb(
        "streamlearn.cli.demo",
        "demo",
        "The whole pipeline in one command: broker, history, first model, live traffic, retrains.",
    ),
    "bench": Verb(
        "streamlearn.cli.bench",
        "bench",
        "The product's figures in one run: a real champion, throughput, latency, sustainable rate.",
    ),
}


@dataclass(frozen=True)
class ExitCode:
    """An exit status, what it means, and the errors that end with it."""

    code: int
    meaning: str
    errors: tuple[type[BaseException], ...] = ()


EXIT_CODES: tuple[ExitCode, ...] = (
    ExitCode(0, "done"),
    ExitCode(1, "any other error"),
    ExitCode(2, "usage: a bad flag, argument or setting", (ConfigError,)),
    ExitCode(3, "Kafka unreachable", (BrokerUnavailable,)),
    ExitCode(
        4,
        "ClickHouse unreachable, or the worker that owns the embedded store did not answer",
        (StoreUnavailable, StoreBusy),
    ),
    ExitCode(5, "not enough data (too few matured labels)", (NotEnoughData,)),
    # And streamlearn.schemas.SchemaError (see schema_error).
    ExitCode(6, "refused: a model release, a schema or a query", (Refused, ModelRejected)),
    ExitCode(7, "no worker answered (status)", (WorkerUnavailable,)),
    ExitCode(130, "interrupted (Ctrl-C)", (KeyboardInterrupt,)),
)
OTHER_ERROR = 1
USAGE_ERROR = 2


REFUSED = 6


def schema_error() -> type[Exception] | None:
    """streamlearn.schemas.SchemaError if that package is loaded. A SchemaError is raised only
    once it is, so it is looked up rather than imported: the package pulls in Kafka and
    pydantic, which `--help` does without."""
    return getattr(sys.modules.get("streamlearn.schemas"), "SchemaError", None)


def exit_code(exc: BaseException) -> int | None:
    """The exit status for an error a user can act on; None for a bug (let it raise)."""
    for entry in EXIT_CODES:
        if entry.errors and isinstance(exc, entry.errors):
            return entry.code
    schema = schema_error()
    if schema is not None and isinstance(exc, schema):
        return REFUSED
    return OTHER_ERROR if isinstance(exc, StreamlearnError) else None


def exit_codes_text() -> str:
    """The table of exit statuses, for `--help` (\b keeps click from rewrapping it)."""
    lines = [f"  {entry.code:<4} {entry.meaning}" for entry in EXIT_CODES]
    return "\b\nExit status:\n" + "\n".join(lines)


class _LazyCommands(MutableMapping[str, Command]):
    """The group's commands: a verb's module is imported the first time it is looked up."""

    def __init__(self) -> None:
        self._loaded: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            if name not in VERBS:
                raise KeyError(name)
            self._loaded[name] = load_verb(name, VERBS[name])
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        yield from VERBS
        yield from (name for name in self._loaded if name not in VERBS)

    def __len__(self) -> int:
        return len(set(VERBS) | set(self._loaded))


class VerbGroup(TyperGroup):
    """The top-level group: verbs listed from VERBS, loaded only when invoked."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands()

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, verb.help) for name, verb in VERBS.items()])


def load_verb(name: str, verb: Verb) -> Command:
    """The click command of a verb: its module's typer app, or a function made a command."""
    target = getattr(importlib.import_module(verb.module), verb.attr)
    if not isinstance(target, typer.Typer):
        single = typer.Typer(add_completion=False, rich_markup_mode=None)
        single.command(name=name)(target)
        target = single
    command = typer.main.get_command(target)
    command.name = name
    return command


def _show_version(value: bool) -> None:
    if value:
        print(f"streamlearn {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=VerbGroup,
    help=HELP,
    epilog=exit_codes_text(),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_show_version, help="Print the version."),
    ] = False,
) -> None:
    """Real-time fraud scoring on Kafka with continuous learning."""


def optional_values(args: Sequence[str]) -> list[str]:
    """`status --watch` without SECONDS gets the default: typer options need a value."""
    out = list(args)
    for i, arg in enumerate(out):
        if arg == "--watch" and "status" in out[:i]:
            following = out[i + 1] if i + 1 < len(out) else "-"
            if not _is_number(following):
                out[i] = "--watch=2"
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: an error a user can act on is one line on stderr and its exit status."""
    args = optional_values(sys.argv[1:] if argv is None else argv)
    try:
        result = app(args=args, standalone_mode=False)
    except cli_exc.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
            print(exc.ctx.get_help())
            sys.exit(0)
        cmd = exc.ctx.command_path if exc.ctx else "streamlearn"
        print(f"{cmd}: {exc.format_message()} (see {cmd} --help)", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    except cli_exc.ClickException as exc:
        print(f"streamlearn: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:
        code = exit_code(exc)
        if code is None:  # a bug: its traceback
            raise
        print(f"streamlearn: {exc}", file=sys.stderr)
        sys.exit(code)
    sys.exit(result if isinstance(result, int) else 0)
