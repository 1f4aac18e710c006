"""What every ``clinical-mm`` command shares, written once.

A typed :class:`~clinical_mm.core.errors.ClinicalMMError` ends a command with ``Error: <Class>: <message>``
on stderr and exit code 1, never a traceback; the pseudonymisation key comes from ``--key-file`` or the
settings; the audit log is open for one block and always closed; ``--jsonl`` lines are read with errors that
name the file and the line; reports print as indented JSON or as table lines. Command modules (and plugins
that add commands) build on these so that every command behaves alike.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from clinical_mm.core.config import PseudonymKey, Settings
from clinical_mm.core.errors import ClinicalMMError, ConfigurationError

if TYPE_CHECKING:
    from clinical_mm.audit.chain_log import ChainedAuditLog

__all__ = [
    "command_line",
    "KEY_FILE_HELP",
    "TextItem",
    "audit_sink",
    "cluster_option",
    "fail",
    "format_option",
    "jsonl_items",
    "key_file_option",
    "print_report",
    "read_items",
    "reported_errors",
    "resolve_key",
    "text_input",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")
_R = TypeVar("_R")

TextItem = tuple[str, str, list[str]]
"""One text to work on: (id, text, target terms)."""

KEY_FILE_HELP = "Pseudonymisation key (hex); default CLINICAL_MM_KEY / CLINICAL_MM_KEY_FILE."


def fail(exc: ClinicalMMError) -> NoReturn:
    """End the command: ``Error: <Class>: <message>`` on stderr, exit code 1 (click's ``ClickException``)."""
    raise click.ClickException(f"{exc.__class__.__name__}: {exc}")


def command_line(ctx: click.Context, program: str, show: Callable[[Any], str] = str) -> str:
    """The command as given, for a provenance record: the options not left at their defaults (a flag by its name),
    each value as ``show`` writes it, shell-quoted."""
    given = [(p, ctx.params[p.name]) for p in ctx.command.params if isinstance(p, click.Option) and p.name is not None
             and ctx.get_parameter_source(p.name) is not click.core.ParameterSource.DEFAULT]
    return program + "".join(f" {p.opts[0]}" if p.is_flag else f" {p.opts[0]} {shlex.quote(show(v))}"
                             for p, v in given if not p.is_flag or v)


@contextmanager
def reported_errors() -> Iterator[None]:
    """A :class:`ClinicalMMError` raised in the block ends the command through :func:`fail`; anything else
    (click's own exceptions, ``SystemExit``, bugs) passes unchanged."""
    try:
        yield
    except ClinicalMMError as exc:
        fail(exc)


def resolve_key(settings: Settings, key_file: Path | None) -> PseudonymKey:
    """The pseudonymisation key: ``--key-file`` when given (it wins over CLINICAL_MM_KEY), else the settings'."""
    if key_file is not None:
        settings = settings.model_copy(update={"key": None, "key_file": key_file})
    return settings.load_key()


@contextmanager
def audit_sink(settings: Settings) -> Iterator[ChainedAuditLog]:
    """The site's audit log (signed and anchored when a signing key is set, on the FHIR server too with
    CLINICAL_MM_AUDIT_ANCHOR_FHIR), closed when the block ends however it ends (a last checkpoint is published then)."""
    from clinical_mm.pipeline.audit_forwarding import SiteAuditLog  # httpx and cryptography: not at start-up

    site = SiteAuditLog(settings)
    try:
        yield site.log
    finally:
        site.close()


def cluster_option() -> Callable[[_F], _F]:
    return click.option("--cluster", metavar="ADDRESS", help="A Dask scheduler's address (tcp://HOST:8786 or tls://...): "
                        "the work runs on its workers, which read CLINICAL_MM_* from their own environment (the same "
                        "key, a shared audit log) and the files at the same paths.")


def key_file_option(help: str = KEY_FILE_HELP) -> Callable[[_F], _F]:
    """The ``--key-file`` option of the commands that pseudonymise or re-identify."""
    return click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help=help)


def threshold_option() -> Callable[[_F], _F]:
    """``--threshold``: the text de-identifier's final score from which a span is PHI."""
    return click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
                        help="Final score from which a span is PHI: lower finds more and masks more clinical words "
                             "(default CLINICAL_MM_DEID_THRESHOLD, else the de-identifier's own).")


def terms_option() -> Callable[[_F], _F]:
    """``--terms``: the site's allow/deny term file for the text de-identifier."""
    return click.option("--terms", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                        help="The site's term file, YAML {allow: [terms never PHI], deny: [term | {term, type}]} "
                             "(default CLINICAL_MM_DEID_TERMS).")


def format_option(*choices: str, help: str | None = None) -> Callable[[_F], _F]:
    """The ``--format`` option (parameter ``fmt``); the first of ``choices`` is the default."""
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default=choices[0], show_default=True,
                        help=help)


def text_input(jsonl_help: str) -> Callable[[_F], _F]:
    """The FILE argument (default ``-``, standard input) and the ``--jsonl`` option of the commands that read
    text: one text from FILE, or one per line of the JSON-lines file."""
    file_argument = click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
    jsonl_option = click.option("--jsonl", "jsonl", type=click.File("r", encoding="utf-8"), help=jsonl_help)

    def decorate(fn: _F) -> _F:
        return file_argument(jsonl_option(fn))

    return decorate


def jsonl_items(jsonl: Any, item: Callable[[Any], _T], expected: str) -> list[_T]:
    """``item`` of each non-blank line of a JSON-lines file; a line it cannot take (not JSON, a field missing
    or of the wrong type) is a :class:`ConfigurationError` naming the file, the line and what was ``expected``."""
    items = []
    for n, line in enumerate(jsonl, start=1):
        if not line.strip():
            continue
        try:
            items.append(item(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigurationError(f"{jsonl.name}: line {n}: expected {expected}") from None
    return items


def read_items(file: Any, jsonl: Any, targets: tuple[str, ...]) -> list[TextItem]:
    """(id, text, targets) from FILE (id ``-`` for standard input) or from --jsonl lines {"id", "text",
    "targets"}; the ``targets`` given on the command line come first on every item."""
    if jsonl is None:
        return [("-" if file.name == "<stdin>" else file.name, file.read(), list(targets))]

    def item(row: Any) -> TextItem:
        own = row.get("targets") or []
        if not isinstance(own, list):
            raise TypeError
        return str(row["id"]), str(row["text"]), [*targets, *map(str, own)]

    return jsonl_items(jsonl, item, "a JSON object with id, text and optional targets (a list)")


def print_report(compute: Callable[[], _R], fmt: str = "json", table: Callable[[_R], Iterable[str]] | None = None,
                 as_dict: Callable[[_R], object] | None = None) -> None:
    """Compute a report (a typed error ends the command with its message) and print it: indented JSON
    (of ``as_dict(report)`` when given) for ``fmt == "json"`` or without a ``table``, else the table's lines."""
    with reported_errors():
        report = compute()
    if fmt == "json" or table is None:
        click.echo(json.dumps(report if as_dict is None else as_dict(report), indent=2))
        return
    for line in table(report):
        click.echo(line)
