"""Commands that other packages add to ``clinical-mm`` through the ``clinical_mm.commands`` entry points."""

from __future__ import annotations

import importlib.metadata
from importlib.metadata import EntryPoint, entry_points

import pytest
from click.testing import CliRunner

from clinical_mm.cli import COMMANDS_ENTRY_POINT_GROUP, CommandGroup, cli
from clinical_mm.cli.audit import audit


def test_when_the_package_is_installed_then_the_evaluation_commands_are_registered() -> None:
    names = {ep.name: ep.value for ep in entry_points(group=COMMANDS_ENTRY_POINT_GROUP)}
    assert names.get("evaluation") == "clinical_mm.evaluation.commands:register"
    help_text = CliRunner().invoke(cli, ["--help"]).output
    for command in ("evaluate-assertions", "evaluate-medications", "evaluate-report-labels", "evaluate-note-entities"):
        assert command in help_text
    deid_help = CliRunner().invoke(cli, ["deid", "--help"]).output
    for command in ("evaluate-text", "train-name-model", "train-context-model"):
        assert command in deid_help


@pytest.mark.parametrize("value", ["clinical_mm.no_such_module:register", "clinical_mm.cli.scaffold:no_such_name"])
def test_when_a_plugin_cannot_load_then_it_is_named_and_the_built_in_commands_still_run(
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    broken = CommandGroup(name="clinical-mm", commands=[audit])
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: [EntryPoint("broken", value, group)])
    named = f"entry point broken ({value}) of {COMMANDS_ENTRY_POINT_GROUP} cannot be loaded"
    listed = CliRunner().invoke(broken, ["--help"])
    assert listed.exit_code == 0 and named in listed.stderr and "audit" in listed.stdout
    built_in = CliRunner().invoke(broken, ["audit", "--help"])
    assert built_in.exit_code == 0 and "verify" in built_in.stdout
    missing = CliRunner().invoke(broken, ["evaluate-assertions"])
    assert missing.exit_code == 1 and named in missing.output


def test_when_a_repository_set_is_missing_as_in_an_installed_wheel_then_the_error_says_where_the_sets_are() -> None:
    # the annotated sets stay out of the runtime wheel; an evaluate-* command without a file must say why it fails
    from clinical_mm.core.errors import ConfigurationError
    from clinical_mm.evaluation.annotated_jsonl import DATA, read_annotated

    with pytest.raises(ConfigurationError, match="in the source repository"):
        read_annotated(DATA / "not_in_this_install.jsonl", dict, "a JSON object")
