"""The ``clinical-mm evaluate`` command group: the evaluation report, and ``evaluate verify`` of its signature."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from clinical_mm.cli.scaffold import cluster_option, command_line, reported_errors
from clinical_mm.evaluation.compliance.signing import verify_outputs

__all__ = ["evaluate"]


def _file_name(value: object) -> str:
    return value.name if isinstance(value, Path) else str(value)


def _bars(enabled: bool) -> Callable[[str, int], Callable[[], None]]:
    from tqdm import tqdm

    def bar(description: str, total: int) -> Callable[[], None]:
        pb = tqdm(total=total, desc=description, unit="", disable=not enabled, leave=True)

        def step() -> None:
            pb.update(1)
            if pb.n >= total:
                pb.close()

        return step

    return bar


@click.group(invoke_without_command=True)
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Test manifest (CSV: path, a 0/1 column per flag; optional study_id, sex, age, site, manufacturer, "
                   "view, findings, impression), e.g. from clinical-mm synth.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (new, empty or an earlier evaluation's): results.json, report.html, report.pdf, "
                   "model_card.xml, signature.json.")
@click.option("--model", "model_path", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Model folder (default: CLINICAL_MM_MODEL_PATH or the shipped model).")
@click.option("--train-manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The model's training manifest: a test set sharing a study id or a file with it is refused.")
@click.option("--goals", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pre-set goals and subgroup test settings (YAML; default: the shipped default_goals.yaml).")
@click.option("--signing-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Ed25519 private key (PEM) to sign the outputs with (signature.json).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap and permutation tests.")
@click.option("--bootstrap", type=click.IntRange(200, 100000), default=1000, show_default=True,
              help="Bootstrap resamples per interval.")
@click.option("--tasks", "tasks_text", default="", metavar="TASK[,TASK...]",
              help="Vision-language tasks to score besides triage: zero_shot, retrieval, vqa, grounding, ood "
                   "(comma-separated, or 'all'); the manifest's specs and regions columns are their ground truth.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@cluster_option()
@click.pass_context
def evaluate(ctx: click.Context, manifest: Path | None, out: Path | None, model_path: Path | None,
             train_manifest: Path | None, goals: Path | None, signing_key: Path | None, seed: int, bootstrap: int,
             tasks_text: str, no_progress: bool, cluster: str | None) -> None:
    """Evaluate the model on a test manifest: accuracy per finding with 95% intervals against pre-set goals,
    subgroups (sex, age band, site, manufacturer, view) with a bias test, calibration, draft report text, input
    handling and provenance, as results.json, report.html, report.pdf and a CHAI model card (signed with
    --signing-key; check with `clinical-mm evaluate verify DIR`)."""
    if ctx.invoked_subcommand is not None:
        given = [p.opts[0] for p in ctx.command.params if isinstance(p, click.Option) and p.name is not None
                 and ctx.get_parameter_source(p.name) is not click.core.ParameterSource.DEFAULT]
        if given:
            raise click.UsageError(f"{', '.join(given)} belong to the evaluation, not to "
                                   f"'evaluate {ctx.invoked_subcommand}'")
        return
    if manifest is None or out is None:
        raise click.UsageError("--manifest and --out are required (or: clinical-mm evaluate verify DIR)")
    from clinical_mm.evaluation.compliance.evaluation_run import EvaluationRequest, run_evaluation
    from clinical_mm.evaluation.compliance.vision_language_tasks import TASKS

    names = TASKS if tasks_text.strip() == "all" else tuple(t.strip() for t in tasks_text.split(",") if t.strip())
    unknown = [t for t in names if t not in TASKS]
    if unknown:
        raise click.BadParameter(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)} or all",
                                 param_hint="--tasks")
    command = command_line(ctx, "clinical-mm evaluate", _file_name)  # a path by its name: folders can hold names
    request = EvaluationRequest(manifest, out, model_path, train_manifest, goals, signing_key, seed, bootstrap,
                                command, tuple(dict.fromkeys(names)), cluster)
    with reported_errors():
        results = run_evaluation(request, progress=_bars(not no_progress), log=click.echo)
    s = results["summary"]
    click.echo(f"{s['analysed']} of {s['studies']} studies analysed; goals met {s['goals']['met']}, not met "
               f"{s['goals']['not_met']}, not judged {s['goals']['not_judged']}; flagged groups: "
               f"{', '.join(s['flagged_groups']) or 'none'}")
    click.echo(f"report: {out / 'report.html'} and {out / 'report.pdf'}; numbers: {out / 'results.json'}; "
               f"model card: {out / 'model_card.xml'}" + ("; signed: signature.json" if signing_key else ""))


@evaluate.command("verify")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The signer's Ed25519 public key (PEM): the outputs must be signed by it.")
def verify(folder: Path, public_key: Path | None) -> None:
    """Check an evaluation's outputs against signature.json: no file changed, added or removed, and a valid
    signature (by --public-key when given). Exit code 1 when they do not match."""
    with reported_errors():  # a SignatureError names what does not match
        report = verify_outputs(folder, public_key)
    click.echo(f"verified: {report['files']} files unchanged since {report['signed_at']}, signed by {report['signer']} "
               f"with key {report['fingerprint'][:16]}" + ("" if public_key else
                                                           " (compare the fingerprint, or give --public-key)"))
