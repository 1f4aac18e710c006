"""Extensions a site installs: the objects named by the entry points of a group, loaded in a stable order.

Entry points (``[project.entry-points."<group>"]`` of an installed package) are how code above a layer adds to
it without the layer importing that code: the evaluation commands to the CLI (``clinical_mm.commands``), a
site's PHI recognizers to the text de-identifier (``clinical_mm.recognizers``). An entry point that cannot be
loaded is a :class:`~clinical_mm.core.errors.ConfigurationError` naming it, never a silent gap.
"""

from __future__ import annotations

import importlib.metadata

from clinical_mm.core.errors import ConfigurationError

__all__ = ["load_entry_points"]


def load_entry_points(group: str, failures: list[str] | None = None) -> list[tuple[str, object]]:
    """``(name, loaded object)`` of each entry point of ``group``, in the order of their names.

    An entry point that cannot be loaded raises :class:`ConfigurationError`, or, where ``failures`` is given,
    has its message appended there and is left out (for extensions whose absence is safe, such as commands).
    """
    loaded = []
    for point in sorted(importlib.metadata.entry_points(group=group), key=lambda p: p.name):
        try:
            loaded.append((point.name, point.load()))
        except Exception as exc:  # noqa: BLE001 - whatever the plugin's import raises, name the plugin
            message = (f"entry point {point.name} ({point.value}) of {group} cannot be loaded "
                       f"({type(exc).__name__}: {exc})")
            if failures is None:
                raise ConfigurationError(message) from None
            failures.append(message)
    return loaded
