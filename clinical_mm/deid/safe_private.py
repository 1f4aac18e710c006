"""Safe private attributes: the list that the Retain Safe Private Option keeps (PS3.15 E.3.10).

A private data element (gggg,xxee) belongs to the block whose private creator (gggg,00xx) names it; an
entry of the list is (private creator, group, element byte ``ee``). The list is the site's own, reviewed
for its devices (the standard's Table E.3.10-1 is a starting point): a JSON array of objects
``{"creator": "ACME 1.1", "group": "0019", "element": "10", "name": "..."}`` with hexadecimal group and
element byte. Nothing is safe unless listed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from clinical_mm.core.errors import ConfigurationError

__all__ = ["SafePrivateList"]


@dataclass(frozen=True)
class SafePrivateList:
    """A set of (creator, group, element byte) that may be retained."""

    entries: frozenset[tuple[str, int, int]] = frozenset()

    @classmethod
    def from_json(cls, path: Path) -> SafePrivateList:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            entries = frozenset(
                (str(e["creator"]).strip().upper(), int(str(e["group"]), 16), int(str(e["element"]), 16))
                for e in raw)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{path}: not a safe-private list ({exc.__class__.__name__}); expected a JSON "
                                     'array of {"creator", "group", "element"}') from None
        for _creator, group, element in entries:
            if group % 2 == 0 or not 0 <= element <= 0xFF:
                raise ConfigurationError(f"{path}: entries need an odd group and an element byte 00-FF")
        return cls(entries)

    def kept_tags(self, ds: Dataset) -> set[int]:
        """The private tags of ``ds`` (this level only) to keep: listed data elements and their creators."""
        if not self.entries:
            return set()
        keep: set[int] = set()
        for elem in ds:
            tag = int(elem.tag)
            group, element = tag >> 16, tag & 0xFFFF
            if group % 2 == 0 or element < 0x1000:
                continue
            creator_tag = (group << 16) | (element >> 8)
            creator = ds.get(creator_tag)
            if creator is None or not isinstance(creator.value, str):
                continue
            if (creator.value.strip().upper(), group, element & 0xFF) in self.entries:
                keep |= {tag, creator_tag}
        return keep
