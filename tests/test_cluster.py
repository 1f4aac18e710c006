"""Batch runs on a local Dask cluster of two worker processes (started here, on 127.0.0.1): the same outputs as the
run in one process, each worker loading the model once, and a worker with another key refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.serve_harness import KEY_HEX

from clinical_mm.audit.sqlite_sink import SQLiteAuditSink
from clinical_mm.cli import cli
from clinical_mm.synth.study_synthesizer import StudySynthesizer

pytestmark = pytest.mark.integration


@pytest.fixture()
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings every process of the run reads (the cluster's workers inherit them)."""
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLINICAL_MM_KEY", KEY_HEX)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the same arithmetic in every process
    return tmp_path


@pytest.fixture()
def cluster(site: Path) -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      worker_dashboard_address=None) as local:
        yield local.scheduler_address


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_when_analyze_runs_on_two_workers_then_its_results_are_those_of_one_process(
        site: Path, cluster: str) -> None:
    studies = StudySynthesizer(61).write(6, site / "in", progress=False, workers=1)
    runner = CliRunner()
    one = runner.invoke(cli, ["analyze", str(site / "in"), "--out", str(site / "one")])
    assert one.exit_code == 0, one.output
    two = runner.invoke(cli, ["analyze", str(site / "in"), "--out", str(site / "two"), "--cluster", cluster])
    assert two.exit_code == 0, two.output
    assert f"{len(studies)} analysed" in two.output
    assert _lines(site / "one" / "results.jsonl") == _lines(site / "two" / "results.jsonl")
    assert sorted(p.name for p in (site / "one" / "fhir").iterdir()) == \
        sorted(p.name for p in (site / "two" / "fhir").iterdir())
    records = SQLiteAuditSink(site / "data" / "audit.sqlite").records(action="analyze")
    assert len(records) == 2 * len(studies)  # both runs, every study, one chain
    assert SQLiteAuditSink(site / "data" / "audit.sqlite").verify().records >= len(records)


def test_when_deid_dicom_runs_on_two_workers_then_it_writes_what_one_process_writes(site: Path, cluster: str) -> None:
    StudySynthesizer(62).write(5, site / "in", progress=False, workers=1)
    runner = CliRunner()
    one = runner.invoke(cli, ["deid", "dicom", str(site / "in"), str(site / "one"), "--workers", "1"])
    assert one.exit_code == 0, one.output
    two = runner.invoke(cli, ["deid", "dicom", str(site / "in"), str(site / "two"), "--cluster", cluster])
    assert two.exit_code == 0, two.output
    written = sorted(p.relative_to(site / "one") for p in (site / "one").rglob("*.dcm"))
    assert written and written == sorted(p.relative_to(site / "two") for p in (site / "two").rglob("*.dcm"))
    assert all((site / "one" / rel).read_bytes() == (site / "two" / rel).read_bytes() for rel in written)


def test_when_a_worker_holds_another_key_then_the_run_is_refused_and_nothing_is_written(
        site: Path, cluster: str) -> None:
    StudySynthesizer(63).write(2, site / "in", progress=False, workers=1)
    (site / "other.hex").write_text("ab" * 32)
    refused = CliRunner().invoke(cli, ["deid", "dicom", str(site / "in"), str(site / "out"), "--cluster", cluster,
                                       "--key-file", str(site / "other.hex")])
    assert refused.exit_code == 1 and "the run's is" in refused.output
    assert not list((site / "out").rglob("*.dcm")) if (site / "out").exists() else True


def test_when_evaluate_runs_on_two_workers_then_its_figures_are_those_of_one_process(site: Path, cluster: str) -> None:
    StudySynthesizer(64).write(12, site / "in", progress=False, workers=1)
    runner = CliRunner()
    runs = {}
    for name, extra in (("one", []), ("two", ["--cluster", cluster])):
        res = runner.invoke(cli, ["evaluate", "--manifest", str(site / "in" / "manifest.csv"), "--out",
                                  str(site / name), "--no-progress", "--bootstrap", "200", *extra])
        assert res.exit_code == 0, res.output
        runs[name] = json.loads((site / name / "results.json").read_text())
    for run in runs.values():
        run["summary"].pop("seconds_per_study")  # how long each took: the one figure that is not the same
    for part in ("summary", "flags", "subgroups", "subgroup_tests", "calibration", "report_text", "input_handling",
                 "goals"):
        assert runs["one"][part] == runs["two"][part], part
