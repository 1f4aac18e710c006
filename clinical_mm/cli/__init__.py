"""The ``clinical-mm`` command line.

One module per command group over :mod:`clinical_mm.cli.scaffold`; packages above the command line (the
evaluation commands) add theirs through the ``clinical_mm.commands`` entry-point group, each naming a
``register(cli: click.Group) -> None``. Heavy libraries (torch, transformers, monai, spaCy, presidio) are
imported inside the commands that need them, so ``clinical-mm --help`` stays fast.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any, cast

import click

from clinical_mm.cli import analysis, audit, deid, extract, fetch, retention, serve, train, vision_language
from clinical_mm.core.registry import load_entry_points

__all__ = ["COMMANDS_ENTRY_POINT_GROUP", "CommandGroup", "cli", "main"]

COMMANDS_ENTRY_POINT_GROUP = "clinical_mm.commands"


class CommandGroup(click.Group):
    """A click group that adds the commands of the ``clinical_mm.commands`` entry points before its first lookup.

    Loading them on demand (not when this package is imported) lets a plugin import
    :mod:`clinical_mm.cli.scaffold` without an import cycle. A plugin that cannot load or register leaves the
    built-in commands working (``serve`` must not depend on an evaluation plugin): its error is printed on
    standard error, and asking for a command that is not there then ends with that error.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugins_loaded = False
        self.plugin_failures: list[str] = []

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load_plugins()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self.load_plugins()
        command = super().get_command(ctx, cmd_name)
        if command is None and self.plugin_failures:
            raise click.ClickException(f"no command {cmd_name!r}; " + "; ".join(self.plugin_failures))
        return command

    def load_plugins(self) -> None:
        """Call each ``clinical_mm.commands`` entry point's ``register(self)``, once; report those that fail."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True  # first: a plugin may look commands up while it registers
        for name, register in load_entry_points(COMMANDS_ENTRY_POINT_GROUP, self.plugin_failures):
            try:
                cast(Callable[[click.Group], None], register)(self)
            except Exception as exc:  # noqa: BLE001 - a plugin's own error, reported with its name
                self.plugin_failures.append(f"the {COMMANDS_ENTRY_POINT_GROUP} entry point {name!r} failed: "
                                            f"{exc.__class__.__name__}: {exc}")
        for failure in self.plugin_failures:
            click.echo(f"warning: {failure}", err=True)


@click.group(cls=CommandGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log progress at INFO level.")
def cli(verbose: bool) -> None:
    """clinical-mm: de-identify chest radiographs, triage them and draft preliminary reports.

    Drafts are preliminary until a radiologist signs them; triage flags only raise priority.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request's full URL at INFO (a FHIR search URL carries an accession number), and
    # pynetdicom dumps every C-FIND and C-MOVE identifier at INFO (accession numbers, StudyInstanceUIDs)
    for noisy in ("httpx", "httpcore", "pynetdicom"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pydicom logs and warns with the values of the elements it reads ("Invalid value for VR UI: '1.3.6...'",
    # tracebacks of decoders): PHI must not reach a log line, and every refusal has our own PHI-free reason
    logging.getLogger("pydicom").setLevel(logging.CRITICAL + 1)
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")


cli.add_command(analysis.analyze)
cli.add_command(analysis.demo)
cli.add_command(audit.audit)
cli.add_command(deid.deid)
cli.add_command(extract.extract)
cli.add_command(extract.label_report)
cli.add_command(fetch.fetch)
cli.add_command(serve.serve)
cli.add_command(retention.purge)
cli.add_command(retention.restore_originals)
cli.add_command(serve.keys)
cli.add_command(train.train_input_gate)
cli.add_command(train.synth)
cli.add_command(train.train)
cli.add_command(train.calibrate_zero_shot)
cli.add_command(vision_language.zero_shot)
cli.add_command(vision_language.ask)
cli.add_command(vision_language.ground)
cli.add_command(vision_language.index)
cli.add_command(vision_language.retrieve)


def main() -> None:
    """The ``clinical-mm`` console script."""
    cli(prog_name="clinical-mm")
