"""Import modules in this interpreter and say which one, through which modules, loaded pyspark.

Run as `python -m tests.spark_free_probe MODULE...` in a fresh process (tests/test_layering.py
does): the source graph stops at third-party packages, this sees what the interpreter really
loads. One process for every module keeps it to one start-up; it names the first module whose
import loaded pyspark (once loaded, later imports of it are not seen), with the modules whose
top-level code was running at that moment. Prints one JSON object: {"loaded_by": null} when none did.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

_chain: list[str] = []


class _PysparkWatch:
    """A meta path finder that finds nothing: it notes who is importing when pyspark is first sought."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] == "pyspark" and not _chain:
            _chain.extend([*executing_modules(), name])


def executing_modules() -> list[str]:
    """Modules whose top-level code is on the stack, outermost first (an import in progress)."""
    names = []
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if frame.f_code.co_name == "<module>" and name != "__main__":
            names.append(name)
        frame = frame.f_back
    return names[::-1]


def first_loader(modules: list[str]) -> dict[str, Any]:
    sys.meta_path.insert(0, _PysparkWatch())
    for module in modules:
        importlib.import_module(module)
        if "pyspark" in sys.modules:
            return {"loaded_by": module, "chain": _chain}
    return {"loaded_by": None}


if __name__ == "__main__":
    print(json.dumps(first_loader(sys.argv[1:])))
