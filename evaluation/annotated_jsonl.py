"""The one reader of annotated JSON-lines sets (assertion sentences, medication lines): a row that does not
parse is refused with its line number and what a line must hold, never with its text."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clinical_mm.core.errors import ConfigurationError

__all__ = ["DATA", "missing_set_hint", "read_annotated"]

#: the annotated sets of the source repository (not in the runtime wheel)
DATA = Path(__file__).resolve().parent / "data"


def missing_set_hint(path: Path) -> str:
    """What to do when one of the repository's own sets is not there: they ship with the source, not the wheel."""
    if Path(path).resolve().parent == DATA and not Path(path).exists():
        return ("; the annotated sets are in the source repository (evaluation/data/), not in the installed "
                "package: run from a checkout or name a file")
    return ""


def read_annotated(path: Path, parse: Callable[[dict[str, Any]], dict[str, Any]], expected: str
                   ) -> list[dict[str, Any]]:
    """``parse(row)`` of each non-empty line of ``path``; ``parse`` raises ValueError, KeyError or TypeError
    for a row it cannot take."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read ({exc.strerror}){missing_set_hint(path)}") from None
    rows = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise TypeError
            rows.append(parse(row))
        except (ValueError, KeyError, TypeError):
            raise ConfigurationError(f"{path}: line {n}: expected {expected}") from None
    return rows
