"""Repository layout, light imports, settings and key handling."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clinical_mm.core.config import PseudonymKey, Settings
from clinical_mm.core.errors import ClinicalMMError, ConfigurationError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["connectors", "audit", "evaluation"])
def test_when_package_is_mapped_then_link_points_at_top_level_folder(name: str) -> None:
    link = ROOT / "clinical_mm" / name
    assert link.is_symlink() and os.readlink(link) == f"../{name}"
    assert (ROOT / name / "__init__.py").is_file()


def test_when_clinical_mm_is_imported_then_no_heavy_library_loads() -> None:
    code = ("import sys, clinical_mm, clinical_mm.cli; "
            "print(sorted(m for m in ('torch', 'transformers', 'monai') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_when_help_is_asked_then_every_command_is_listed() -> None:
    out = subprocess.run([sys.executable, "-m", "clinical_mm.cli", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for command in ("synth", "train", "analyze", "demo", "audit"):
        assert command in out


def test_when_no_key_in_production_then_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CLINICAL_MM_KEY", "CLINICAL_MM_KEY_FILE", "CLINICAL_MM_MODE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigurationError, match="no pseudonymisation key"):
        Settings().load_key()


def test_when_demo_mode_then_throwaway_key(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("CLINICAL_MM_MODE", "demo")
    monkeypatch.delenv("CLINICAL_MM_KEY", raising=False)
    key = Settings().load_key()
    assert key.ephemeral and "throwaway" in caplog.text


@pytest.mark.parametrize(("value", "message"), [("zz" * 32, "hexadecimal"), ("ab" * 8, "at least 32 bytes")])
def test_when_key_is_bad_then_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.setenv("CLINICAL_MM_KEY", value)
    with pytest.raises(ConfigurationError, match=message) as err:
        Settings().load_key()
    assert value not in str(err.value)


def test_when_key_is_printed_then_secret_is_not_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "5e" * 32
    (tmp_path / "k").write_text(secret)
    monkeypatch.delenv("CLINICAL_MM_KEY", raising=False)
    monkeypatch.setenv("CLINICAL_MM_KEY_FILE", str(tmp_path / "k"))
    key = Settings().load_key()
    assert secret not in repr(key) and secret not in str(key) and secret not in repr(Settings())
    assert isinstance(key, PseudonymKey) and len(key.key_id) == 16


def test_when_any_error_is_raised_on_purpose_then_it_has_one_root() -> None:
    import clinical_mm.core.errors as errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), ClinicalMMError)
