"""``clinical-mm synth`` and ``clinical-mm train``: synthetic studies and the training of the model on them
(or on a site's own studies)."""

from __future__ import annotations

from pathlib import Path

import click

from clinical_mm.cli.scaffold import command_line, reported_errors
from clinical_mm.core.errors import ConfigurationError

__all__ = ["calibrate_zero_shot", "synth", "train", "train_input_gate"]


@click.command()
@click.option("--n", "n", type=int, required=True, help="Number of studies.")
@click.option("--seed", type=int, required=True, help="Data seed (deterministic per seed).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON with sites, prevalence, demographics (plants site or sex effects).")
@click.option("--mix", type=click.Choice(["default", "evaluation"]), default=None,
              help="Preset mix: default (the training data's) or evaluation (four sites of unequal weight, "
                   "older patients); with --config, the base its keys override.  [default: default]")
@click.option("--subtlety", type=click.Choice(["standard", "graded"]), default=None,
              help="standard (the training data's: findings plainly visible) or graded (findings down to the "
                   "edge of visibility, for meaningful test metrics).  [default: standard]")
@click.option("--shift", "shift", metavar="ATTRIBUTE=VALUE", default=None,
              help="Seeded acquisition shift: degrade the images (blur, contrast, noise) of one group, e.g. "
                   "site=SITE_B, sex=F, manufacturer='Acme Imaging', view=AP; nothing else changes.")
@click.option("--shift-strength", type=float, default=None, help="Strength of --shift, in (0, 3].  [default: 1.0]")
@click.option("--incidental/--no-incidental", default=None,
              help="Draw and report support devices and incidental findings (endotracheal and nasogastric tubes, "
                   "central lines, pacemakers, sternotomy wires, rib fractures, hyperinflation), never flags.  "
                   "[default: the config's; off in both mixes]")
@click.option("--graded-heart/--no-graded-heart", default=None,
              help="Draw an enlarged heart at its grade's cardiothoracic ratio (mild 0.55-0.63, moderate 0.63-0.70, "
                   "marked 0.70-0.75), so that the grade is readable from the film.  [default: the config's; off]")
@click.option("--workers", type=int, default=None, help="Processes (default: up to 2).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def synth(n: int, seed: int, out: Path, config_path: Path | None, mix: str | None, subtlety: str | None,
          shift: str | None, shift_strength: float | None, incidental: bool | None, graded_heart: bool | None,
          workers: int | None, no_progress: bool) -> None:
    """Synthesise N chest radiograph studies (DICOM with fake PHI, reference reports) and manifest.csv.

    The defaults give the data the shipped model was trained on. For evaluation sets: --subtlety graded,
    --mix evaluation and, to plant a disparity, --shift (a documented, seeded acquisition shift of one group).
    """
    from dataclasses import replace

    from clinical_mm.synth.study_synthesizer import (
        INCIDENTAL_PREVALENCE,
        AcquisitionShift,
        StudySynthesizer,
        SynthConfig,
    )

    with reported_errors():
        base = SynthConfig.preset(mix) if mix is not None else None
        cfg = SynthConfig.from_json(config_path, base) if config_path else (base or SynthConfig())
        if incidental is not None:
            cfg = replace(cfg, incidental_prevalence=dict(INCIDENTAL_PREVALENCE) if incidental else {})
        if graded_heart is not None:
            cfg = replace(cfg, graded_heart=graded_heart)
        if subtlety is not None:
            cfg = replace(cfg, subtlety=subtlety)
        if shift is not None:
            cfg = replace(cfg, shift=AcquisitionShift.parse(shift, shift_strength))
        elif shift_strength is not None:
            if cfg.shift is None:
                raise ConfigurationError("--shift-strength needs --shift (or a shift in --config)")
            cfg = replace(cfg, shift=replace(cfg.shift, strength=shift_strength))
        studies = StudySynthesizer(seed, cfg).write(n, out, progress=not no_progress, workers=workers)
    click.echo(f"wrote {len(studies)} studies and {out / 'manifest.csv'}"
               + (f" ({sum(s.shifted for s in studies)} with the acquisition shift {cfg.shift.attribute}="
                  f"{cfg.shift.value})" if cfg.shift is not None else ""))


@click.command()
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Training manifest of your own studies (manifest.csv format).")
@click.option("--val-manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Validation manifest (calibration, thresholds, metrics).")
@click.option("--synth-seed", type=int, default=1, show_default=True, help="Without --manifest: data seed of the training set.")
@click.option("--synth-n", type=int, default=6000, show_default=True, help="Without --manifest: training studies to synthesise.")
@click.option("--val-seed", type=int, default=2, show_default=True, help="Without --val-manifest: data seed of validation.")
@click.option("--val-n", type=int, default=600, show_default=True, help="Without --val-manifest: validation studies.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of initialisation and batching.")
@click.option("--work", type=click.Path(path_type=Path), default=Path("work/train-run"), show_default=True,
              help="Caches and resumable state (re-run the same command to resume).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Model folder to write.")
@click.option("--quick", is_flag=True, help="One epoch per stage (smoke run).")
@click.option("--continue-from", "continue_from", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A trained model folder to continue from (its weights and tokenizer): the language model learns "
                   "new report sentences and answers to questions, the image encoder new targets, stage 2 the rest "
                   "(stage 1 is not repeated). The manifest records the parent.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def train(manifest: Path | None, val_manifest: Path | None, synth_seed: int, synth_n: int, val_seed: int, val_n: int,
          seed: int, work: Path, out: Path, quick: bool, continue_from: Path | None, no_progress: bool) -> None:
    """Train the model: tokenizer, LM, image encoder, BLIP-2 stages 1 and 2, triage calibration."""
    import torch

    from clinical_mm.pipeline.model_training import TrainingRun, train_model

    torch.set_num_threads(max(1, torch.get_num_threads()))
    command = command_line(click.get_current_context(), "clinical-mm train")
    run = TrainingRun(manifest, val_manifest, synth_seed, synth_n, val_seed, val_n, seed, work, out, quick,
                      progress=not no_progress, command=command, continue_from=continue_from)
    with reported_errors():
        result = train_model(run, log=click.echo)
    click.echo(f"model written to {out} (sha256 {result['weights']['sha256'][:16]}..., "
               f"validation mean AUROC {result['validation']['mean_auroc']})")


@click.command("train-input-gate")
@click.option("--model", "model_path", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Model folder whose input gate to fit (its manifest.json gains an input_gate section).")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Training images (manifest.csv format; default: synthesised with --synth-seed, --synth-n).")
@click.option("--val-manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Validation images, which set the thresholds (default: synthesised with --val-seed, --val-n).")
@click.option("--synth-seed", type=int, default=1, show_default=True, help="Without --manifest: data seed.")
@click.option("--synth-n", type=int, default=1500, show_default=True, help="Without --manifest: studies.")
@click.option("--val-seed", type=int, default=2, show_default=True, help="Without --val-manifest: data seed.")
@click.option("--val-n", type=int, default=600, show_default=True, help="Without --val-manifest: studies.")
@click.option("--work", type=click.Path(path_type=Path), default=Path("work/gate-run"), show_default=True,
              help="Synthesised data and caches.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def train_input_gate(model_path: Path, manifest: Path | None, val_manifest: Path | None, synth_seed: int, synth_n: int,
                     val_seed: int, val_n: int, work: Path, no_progress: bool) -> None:
    """Fit a model folder's image-level input gate: the chest-radiograph detector (refuses what is not one)
    and the encoder statistics with the in-domain threshold (marks what is unlike the validation images).

    The synthetic defaults are the first studies of the shipped model's own training and validation seeds.
    """
    from clinical_mm.pipeline.model_training import fit_gate_of_folder

    command = command_line(click.get_current_context(), "clinical-mm train-input-gate")
    with reported_errors():
        section = fit_gate_of_folder(model_path, manifest, val_manifest, (synth_seed, synth_n), (val_seed, val_n),
                                     work, command=command, progress=not no_progress, log=click.echo)
    click.echo(f"input gate written to {model_path / section['file']}: distance threshold {section['threshold']}, "
               f"chest-radiograph threshold {section['chest_threshold']}; validation images outside the domain "
               f"{section['validation']['outside_domain']:.3f}, refused {section['validation']['refused']:.3f}")


@click.command("calibrate-zero-shot")
@click.option("--model", "model_path", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Model folder whose zero-shot calibration to fit (its manifest.json gains a zero_shot section).")
@click.option("--val-manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Validation studies (manifest.csv; default: synthesised with --val-seed, --val-n).")
@click.option("--val-seed", type=int, default=2, show_default=True, help="Without --val-manifest: data seed.")
@click.option("--val-n", type=int, default=600, show_default=True, help="Without --val-manifest: studies.")
@click.option("--work", type=click.Path(path_type=Path), default=Path("work/zero-shot-run"), show_default=True,
              help="Synthesised data and caches.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def calibrate_zero_shot(model_path: Path, val_manifest: Path | None, val_seed: int, val_n: int, work: Path,
                        no_progress: bool) -> None:
    """Fit the calibration of zero-shot probabilities (clinical-mm zero-shot) on validation images: a logistic
    curve of the prompts' margin, pooled over the flags and the incidental findings the manifest knows, so that
    it holds for findings named in any words. clinical-mm train fits it at the end of a run."""
    from clinical_mm.pipeline.model_training import calibrate_zero_shot_of_folder

    command = command_line(click.get_current_context(), "clinical-mm calibrate-zero-shot")
    with reported_errors():
        section = calibrate_zero_shot_of_folder(model_path, val_manifest, (val_seed, val_n), work, command=command,
                                                progress=not no_progress)
    cal = section["calibration"]
    click.echo(f"zero-shot calibration: sigmoid({cal['slope']} * margin + {cal['intercept']}), fitted on "
               f"{section['fitted_on']}; written to {model_path / 'manifest.json'}")
