"""The shipped de-identification models' file format: gzip JSON, written the same way every time (sorted
keys, no gzip timestamp) so that retraining on the same inputs reproduces the shipped file byte for byte."""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["read", "write"]


def read(shipped: str, path: Path | None = None) -> dict[str, Any]:
    """The model in ``path``, else the shipped ``clinical_mm/data/<shipped>``."""
    raw = resources.files("clinical_mm").joinpath(f"data/{shipped}").read_bytes() if path is None else path.read_bytes()
    data: dict[str, Any] = json.loads(gzip.decompress(raw))
    return data


def write(out: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``out`` (parents made as needed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(gzip.compress(json.dumps(data, sort_keys=True, separators=(",", ":")).encode(), mtime=0))
