"""Experiments behind the labs: each module here is one `just experiment <name>` and has main(argv).

They train several models under one contract and print the numbers the lab pages show. They use
only the public package (config, train, telemetry, params, compress) and print a table plus the
files they write.
"""

from __future__ import annotations

import importlib
import pkgutil


def names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def run(name: str, argv: list[str]) -> int:
    if name not in names():
        import difflib

        close = difflib.get_close_matches(name, names(), n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        print(f"error: unknown experiment {name!r}{hint}; experiments: {', '.join(names()) or '(none yet)'}")
        return 2
    return importlib.import_module(f"{__name__}.{name}").main(argv) or 0
