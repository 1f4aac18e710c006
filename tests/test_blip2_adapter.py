"""A staged BLIP-2 checkpoint as a report generator: the factory's choice, the adapter's draft and text-derived
flags, refusals of folders it cannot use, tampered weights, ``analyze`` end to end with ``--model``, and ``serve``
with the checkpoint as its model (``integration``).

The checkpoints are tiny and written to disk here (``tests/support/tiny_blip2.py``): one randomly initialised,
one fitted to write a known report, so the flags it must raise are known.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fhir.resources.R4B.bundle import Bundle
from pydicom import dcmread
from safetensors.torch import load_file, save_file
from support.serve_harness import Receiver, Service, files_of, storescu, wait_for
from support.tiny_blip2 import write_tiny_blip2
from transformers import Blip2ForConditionalGeneration

from clinical_mm.cli import cli
from clinical_mm.core.config import PseudonymKey
from clinical_mm.core.errors import CheckpointError
from clinical_mm.core.findings import FINDINGS, priority_for
from clinical_mm.core.types import DeidentifiedStudy
from clinical_mm.deid import DicomDeidentifier
from clinical_mm.extraction.chexpert import RadiologyReportLabeler
from clinical_mm.model.blip2_report_generator import TEXT_FLAG_THRESHOLD, Blip2ReportGenerator, split_sections
from clinical_mm.model.generator_factory import checkpoint_kind, load_report_generator
from clinical_mm.model.report_generator import ClinicalMMReportGenerator
from clinical_mm.synth.study_synthesizer import SynthStudy

#: what the taught checkpoint writes after the prompt ``FINDINGS:``, whatever the image
TAUGHT = " Large right pneumothorax. IMPRESSION: Right pneumothorax."
LABELER = RadiologyReportLabeler()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_blip2(tmp_path_factory.mktemp("blip2") / "tiny-blip2")


@pytest.fixture(scope="module")
def taught(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_blip2(tmp_path_factory.mktemp("blip2") / "taught-blip2", teach=TAUGHT)


@pytest.fixture(scope="module")
def study(synth_dir: tuple[Path, list[SynthStudy]]) -> DeidentifiedStudy:
    root, studies = synth_dir
    datasets = [dcmread(root / f) for f in studies[0].files]
    return DicomDeidentifier(PseudonymKey(bytes(range(32)))).deidentify_study(datasets)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the factory ---------------------------------------------------------------------------------------------


def test_when_the_folder_holds_our_manifest_then_our_generator_is_chosen(model_path: Path) -> None:
    assert checkpoint_kind(model_path) == "clinical-mm"
    assert isinstance(load_report_generator(model_path, draft_reader=LABELER), ClinicalMMReportGenerator)


def test_when_the_folder_holds_a_blip2_checkpoint_then_the_adapter_is_chosen_and_named_by_its_weights(
        tiny: Path) -> None:
    assert checkpoint_kind(tiny) == "blip-2"
    generator = load_report_generator(tiny, draft_reader=LABELER)
    assert isinstance(generator, Blip2ReportGenerator)
    sha = _sha256(tiny / "model.safetensors")
    assert generator.model_sha256 == sha
    assert generator.model_id == f"blip2:tiny-blip2@{sha[:12]}"


def _write_config(folder: Path, **changes: object) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def _write_processor(folder: Path, **changes: object) -> None:
    config = json.loads((folder / "processor_config.json").read_text())
    config.update(changes)
    (folder / "processor_config.json").write_text(json.dumps(config))


def _drop_tensor(folder: Path) -> None:
    state = load_file(str(folder / "model.safetensors"))
    del state["language_projection.weight"]
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})


def _only_pickled_weights(folder: Path) -> None:
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")


BAD_FOLDERS: list[tuple[str, Callable[[Path], object], str]] = [
    ("empty", lambda f: [p.unlink() for p in f.iterdir()], "expected manifest.json .* or config.json"),
    ("other model type", lambda f: _write_config(f, model_type="llava"), "model_type 'llava' is not supported"),
    ("config not JSON", lambda f: (f / "config.json").write_text("{not json"), "cannot be read as JSON"),
    ("retrieval model", lambda f: _write_config(f, architectures=["Blip2ForImageTextRetrieval"]),
     "not Blip2ForConditionalGeneration"),
    ("no image token", lambda f: _write_config(f, image_token_index=None), "no image_token_index"),
    ("no weights", lambda f: (f / "model.safetensors").unlink(), "weights missing"),
    ("pickled weights only", _only_pickled_weights, "pickled weights are not loaded"),
    ("corrupt weights", lambda f: (f / "model.safetensors").write_bytes(b"corrupt"), "cannot load the BLIP-2 weights"),
    ("a weight missing", _drop_tensor, "weights do not match config.json \\(1 missing"),
    ("no tokenizer", lambda f: (f / "tokenizer.json").unlink(), "cannot load the Blip2Processor"),
    ("no processor config", lambda f: (f / "processor_config.json").unlink(), "cannot load the Blip2Processor"),
    ("fewer queries", lambda f: _write_config(f, num_query_tokens=2), "cannot load the BLIP-2 weights|weights do not match"),
    ("processor's queries differ", lambda f: _write_processor(f, num_query_tokens=3), "num_query_tokens differs"),
    ("another image token", lambda f: _write_config(f, image_token_index=3), "image token differs"),
]


@pytest.mark.parametrize(("case", "spoil", "message"), BAD_FOLDERS, ids=[row[0] for row in BAD_FOLDERS])
def test_when_the_folder_cannot_be_used_then_checkpoint_error_names_what_was_expected(
        tiny: Path, tmp_path: Path, case: str, spoil: Callable[[Path], object], message: str) -> None:
    folder = _copy(tiny, tmp_path / "staged")
    spoil(folder)
    with pytest.raises(CheckpointError, match=message):
        load_report_generator(folder, draft_reader=LABELER)


def test_when_the_path_is_a_file_then_checkpoint_error(tiny: Path) -> None:
    with pytest.raises(CheckpointError, match="not a model folder"):
        load_report_generator(tiny / "config.json", draft_reader=LABELER)


# --- the adapter's draft -------------------------------------------------------------------------------------


def test_when_a_study_is_analysed_then_the_draft_has_every_flag_read_from_its_own_text(
        tiny: Path, study: DeidentifiedStudy) -> None:
    generator = Blip2ReportGenerator.from_path(tiny, draft_reader=LABELER, max_new_tokens=24)
    draft = generator.analyze(study, 0)
    assert list(draft.flags) == list(FINDINGS)
    assert set(draft.flags.values()) <= {0.0, 1.0}
    assert draft.thresholds == dict.fromkeys(FINDINGS, TEXT_FLAG_THRESHOLD)
    stated = LABELER.stated_present(f"FINDINGS: {draft.findings}\nIMPRESSION: {draft.impression}")
    assert draft.flags == {name: float(stated[name]) for name in FINDINGS}
    assert draft.raised == [name for name in FINDINGS if stated[name]]
    assert draft.priority == priority_for(draft.raised)
    assert set(draft.timings_ms) == {"preprocess", "generate"}
    again = generator.analyze(study, 0)  # greedy decoding: the same image gives the same draft
    assert (again.findings, again.impression) == (draft.findings, draft.impression)


def test_when_the_taught_checkpoint_reads_a_study_then_its_report_raises_what_it_states(
        taught: Path, study: DeidentifiedStudy) -> None:
    draft = Blip2ReportGenerator.from_path(taught, draft_reader=LABELER).analyze(study, 0)
    assert (draft.findings, draft.impression) == ("Large right pneumothorax.", "Right pneumothorax.")
    assert draft.raised == ["pneumothorax"]
    assert draft.flags["pneumothorax"] == 1.0 and sum(draft.flags.values()) == 1.0
    assert draft.priority == "critical"


def test_when_the_prompt_is_changed_then_the_model_continues_that_text(
        taught: Path, study: DeidentifiedStudy) -> None:
    default = Blip2ReportGenerator.from_path(taught, draft_reader=LABELER)
    other = Blip2ReportGenerator.from_path(taught, draft_reader=LABELER, prompt="IMPRESSION:")
    rgb = default.image(study.instances[0])
    assert default.generate_text(rgb) == TAUGHT.strip()
    assert other.generate_text(rgb) != TAUGHT.strip()


def test_when_the_study_is_not_deidentified_then_type_error(tiny: Path, synth_dir: tuple[Path, list[SynthStudy]]
                                                            ) -> None:
    generator = Blip2ReportGenerator.from_path(tiny, draft_reader=LABELER)
    root, studies = synth_dir
    with pytest.raises(TypeError, match="DeidentifiedStudy"):
        generator.analyze(dcmread(root / studies[0].path), 0)  # type: ignore[arg-type]


def test_when_the_image_is_prepared_then_it_is_three_equal_uint8_channels_of_the_readers_view(
        tiny: Path, study: DeidentifiedStudy) -> None:
    generator = Blip2ReportGenerator.from_path(tiny, draft_reader=LABELER)
    ds = study.instances[0]
    rgb = generator.image(ds)
    assert rgb.shape == (ds.Rows, ds.Columns, 3) and rgb.dtype.name == "uint8"
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all()
    assert rgb.min() == 0 and rgb.max() == 255


@pytest.mark.parametrize(("text", "findings", "impression"), [
    ("The lungs are clear. IMPRESSION: Normal.", "The lungs are clear.", "Normal."),
    ("FINDINGS: Small effusion. Impression: effusion", "Small effusion.", "effusion"),
    ("  findings:   Heart enlarged.  ", "Heart enlarged.", ""),
    ("a cat on a couch", "a cat on a couch", ""),
    ("Mild edema. IMPRESSION: Edema. IMPRESSION: again", "Mild edema.", "Edema. IMPRESSION: again"),
    ("", "", ""),
])
def test_when_a_generated_text_is_split_then_sections_follow_the_headings(text: str, findings: str,
                                                                          impression: str) -> None:
    assert split_sections(text) == (findings, impression)


def test_when_the_generator_is_given_a_bad_token_budget_then_value_error(tiny: Path) -> None:
    with pytest.raises(ValueError, match="max_new_tokens"):
        Blip2ReportGenerator.from_path(tiny, draft_reader=LABELER, max_new_tokens=0)


# --- tampered and sharded weights ----------------------------------------------------------------------------


def test_when_weights_are_tampered_then_the_sha256_changes_and_a_pinned_sha256_refuses_them(
        tiny: Path, tmp_path: Path) -> None:
    original = Blip2ReportGenerator.from_path(tiny, draft_reader=LABELER)
    folder = _copy(tiny, tmp_path / "tiny-blip2")
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01  # one bit of a stored float: the file still loads
    weights.write_bytes(bytes(data))
    tampered = Blip2ReportGenerator.from_path(folder, draft_reader=LABELER)
    assert tampered.model_sha256 == _sha256(weights) != original.model_sha256
    assert tampered.model_id != original.model_id
    with pytest.raises(CheckpointError, match="sha256 differs"):
        Blip2ReportGenerator.from_path(folder, draft_reader=LABELER, expected_sha256=original.model_sha256)
    pinned = Blip2ReportGenerator.from_path(tiny, draft_reader=LABELER, expected_sha256=original.model_sha256.upper())
    assert pinned.model_sha256 == original.model_sha256


def test_when_weights_are_sharded_then_the_sha256_covers_every_shard(tiny: Path, tmp_path: Path) -> None:
    folder = _copy(tiny, tmp_path / "sharded")
    (folder / "model.safetensors").unlink()
    Blip2ForConditionalGeneration.from_pretrained(str(tiny), local_files_only=True).save_pretrained(
        folder, max_shard_size="40KB")
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) > 1 and (folder / "model.safetensors.index.json").is_file()
    lines = "".join(f"{_sha256(s)}  {s.name}\n" for s in shards)
    generator = Blip2ReportGenerator.from_path(folder, draft_reader=LABELER)
    assert generator.model_sha256 == hashlib.sha256(lines.encode()).hexdigest()
    data = bytearray(shards[-1].read_bytes())
    data[-3] ^= 0x01
    shards[-1].write_bytes(bytes(data))
    assert Blip2ReportGenerator.from_path(folder, draft_reader=LABELER).model_sha256 != generator.model_sha256
    shards[0].unlink()
    with pytest.raises(CheckpointError, match="weights missing"):
        Blip2ReportGenerator.from_path(folder, draft_reader=LABELER)


# --- analyze end to end --------------------------------------------------------------------------------------


def test_when_analyze_is_given_a_blip2_checkpoint_then_every_study_is_drafted_flagged_and_audited(
        taught: Path, synth_dir: tuple[Path, list[SynthStudy]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src_dir, studies = synth_dir
    shutil.copytree(src_dir / "studies", tmp_path / "batch" / "studies")
    monkeypatch.setenv("CLINICAL_MM_KEY", "ab" * 32)
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["analyze", str(tmp_path / "batch"), "--out", str(out), "--model", str(taught)])
    assert result.exit_code == 0, result.output
    assert f"{len(studies)} analysed, 0 refused" in result.output
    sha = _sha256(taught / "model.safetensors")
    model_id = f"blip2:taught-blip2@{sha[:12]}"
    lines = {line["source"]: line for line in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert set(lines) == {s.path for s in studies}
    for line in lines.values():
        assert (line["findings"], line["impression"]) == ("Large right pneumothorax.", "Right pneumothorax.")
        assert line["flags"] == {name: float(name == "pneumothorax") for name in FINDINGS}
        assert line["thresholds"] == dict.fromkeys(FINDINGS, 0.5)
        assert line["raised"] == ["pneumothorax"] and line["priority"] == "critical"
        assert line["draft_check"]["disagree"] == []
        assert line["ood"]["in_domain"] is True  # the shipped model's input gate read the image first
        assert "regions" not in line  # a BLIP-2 checkpoint does not localise
        bundle = json.loads((out / line["fhir"]).read_text())
        Bundle.model_validate(bundle)
        resources = [e["resource"] for e in bundle["entry"]]
        device = next(r for r in resources if r["resourceType"] == "Device")
        assert device["identifier"][0]["value"] == sha and device["deviceName"][0]["name"] == model_id
        assert sum(r["resourceType"] == "Observation" for r in resources) == len(FINDINGS)
    db = sqlite3.connect(tmp_path / "data" / "audit.sqlite")
    records = db.execute("SELECT outcome, model_id, model_sha256 FROM audit WHERE action = 'analyze'").fetchall()
    db.close()
    assert sorted(records) == [("analyzed", model_id, sha)] * len(studies)
    verified = CliRunner().invoke(cli, ["audit", "verify", "--db", str(tmp_path / "data" / "audit.sqlite")])
    assert verified.exit_code == 0, verified.output


def test_when_analyze_is_given_an_unusable_model_folder_then_it_stops_with_the_reason(
        tiny: Path, synth_dir: tuple[Path, list[SynthStudy]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _copy(tiny, tmp_path / "staged")
    _write_config(folder, model_type="llava")
    monkeypatch.setenv("CLINICAL_MM_KEY", "ab" * 32)
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["analyze", str(synth_dir[0] / "studies"), "--out", str(tmp_path / "out"),
                                      "--model", str(folder)])
    assert result.exit_code != 0
    assert "model_type 'llava' is not supported" in result.output
    assert not (tmp_path / "out" / "results.jsonl").exists()


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk (storescu) is installed by make test")
def test_when_serve_is_given_a_blip2_checkpoint_then_its_callback_names_it_and_its_flags(
        taught: Path, receiver: Receiver, synth_dir: tuple[Path, list[SynthStudy]], tmp_path: Path) -> None:
    root, studies = synth_dir
    service = Service(tmp_path / "data")
    service.env["CLINICAL_MM_MODEL_PATH"] = str(taught)
    admin = service.cli("keys", "create", "--role", "admin")
    service.start()
    try:
        r = httpx.post(f"{service.base}/v1/subscribers", headers={"Authorization": f"Bearer {admin}"},
                       json={"url": receiver.url, "secret": "receiver-shared-secret-0123456789",
                             "min_priority": "routine"})
        assert r.status_code == 201, r.text
        assert storescu(service.dicom_port, files_of(root, studies[0])).returncode == 0
        _, body = wait_for(lambda: receiver.events and receiver.events[0])
    finally:
        service.stop()
    event = json.loads(body)
    sha = _sha256(taught / "model.safetensors")
    assert event["model"] == {"id": f"blip2:taught-blip2@{sha[:12]}", "sha256": sha}
    assert event["raised"] == ["pneumothorax"] and event["priority"] == "critical"
