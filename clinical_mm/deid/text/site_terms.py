"""A site's allow-list and deny-list for the text de-identifier, read from one YAML file.

``allow``: terms that are never PHI in this site's notes (a ward's shorthand, a drug the models take for a name);
``deny``: terms that are always PHI (the site's own hospital names and abbreviations, its wards), each with the
entity type its surrogate takes (default ``LOCATION``)::

    allow: [CAREVUE, "Aldrete score"]
    deny:
      - GH
      - {term: Briarwood, type: WARD}

Terms match whole words, case-insensitively; an allowed phrase allows itself, not its words elsewhere ("Aldrete
score" leaves "Dr. Aldrete" to the recognizers). A deny-listed term wins over an allow-listed one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinical_mm.core.errors import ConfigurationError

__all__ = ["SiteTerms"]

_TYPE = re.compile(r"[A-Z][A-Z_]*")


@dataclass(frozen=True)
class SiteTerms:
    """The allow-list (lower case) and the deny-list ((term, entity type)) of a site."""

    allow: frozenset[str] = field(default_factory=frozenset)
    deny: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_file(cls, path: Path) -> SiteTerms:
        """Read a site's term file (the YAML form above); :class:`ConfigurationError` says what is wrong."""
        import yaml

        try:
            conf = yaml.safe_load(path.read_text("utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"site term file {path}: cannot read it ({type(exc).__name__})") from None
        if not isinstance(conf, dict) or set(conf) - {"allow", "deny"}:
            raise ConfigurationError(f"site term file {path}: expected a mapping with 'allow' and/or 'deny' lists")
        allow = conf.get("allow") or []
        if not isinstance(allow, list) or not all(isinstance(t, str) and t.strip() for t in allow):
            raise ConfigurationError(f"site term file {path}: 'allow' must be a list of terms")
        return cls(frozenset(t.strip().lower() for t in allow),
                   tuple(_deny_entry(path, e) for e in conf.get("deny") or []))


def _deny_entry(path: Path, entry: Any) -> tuple[str, str]:
    """(term, entity type) of one ``deny`` entry: a term, or ``{term, type}``."""
    term, kind = (entry, "LOCATION") if isinstance(entry, str) else (
        (entry.get("term"), entry.get("type", "LOCATION")) if isinstance(entry, dict) else (None, None))
    if not isinstance(term, str) or not term.strip() or not isinstance(kind, str) or not _TYPE.fullmatch(kind):
        raise ConfigurationError(f"site term file {path}: a 'deny' entry is a term or {{term, type}} with an "
                                 "upper-case entity type (PERSON, LOCATION, HOSPITAL, WARD, ...)")
    return term.strip(), kind
