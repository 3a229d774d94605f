"""Every source, one module each. A module here that defines a module-level ``SOURCE`` is registered.

Built-in sources are found the same way an added one is: drop ``otc/sources/<name>.py`` with a
``SOURCE = MySource()`` and it is on the Sources page, in the engine and in the CLI.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from otc.sources.base import Source

_NOT_SOURCES = {"base"}


@lru_cache(maxsize=1)
def all_sources() -> tuple[Source, ...]:
    """All registered sources: offline ones first, then by name (a stable order for columns and panels)."""
    found: list[Source] = []
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name in _NOT_SOURCES or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        source = getattr(module, "SOURCE", None)
        if isinstance(source, Source):
            found.append(source)
    names = [s.name for s in found]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise RuntimeError(f"two sources share the name(s) {sorted(duplicates)}")
    return tuple(sorted(found, key=lambda s: (s.third_party, s.name)))


def source_by_name(name: str) -> Source:
    for source in all_sources():
        if source.name == name:
            return source
    raise KeyError(f"no source named {name!r}")
