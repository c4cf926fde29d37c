"""Experiments behind the labs: each module here is one `just experiment <name>` and has main(argv).

They train several models and print the numbers the lab pages show. Each starts from its phase's
settings, written once in labs/phase-NN-*/ (`lab_config`), the files the phase's tests read too;
any moe-train flag an experiment takes changes them.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from pathlib import Path

from ..config import Config, ConfigError

LABS = Path(__file__).resolve().parents[3] / "labs"  # src/minimoe/experiments -> the checkout
NOT_SETTINGS = ("outputs.yaml", "syllabus.yaml")  # a phase folder's other YAML: its pages' outputs, its syllabus


def settings_files(phase_dir: Path) -> list[Path]:
    """A phase folder's settings files (lab.yaml, ...): every YAML beside its pages but NOT_SETTINGS."""
    return sorted(f for f in phase_dir.glob("*.yaml") if f.is_file() and f.name not in NOT_SETTINGS)


def lab_file(phase: int, name: str = "lab") -> Path:
    """labs/phase-<phase>-*/<name>.yaml: a phase's settings (lab.yaml: its lab model)."""
    found = sorted(LABS.glob(f"phase-{phase}-*/{name}.yaml"))
    if not found:
        raise ConfigError(f"no settings file labs/phase-{phase}-*/{name}.yaml beside src/ (looked in {LABS}); "
                          "run from a minimoe checkout")
    return found[0]


def lab_config(phase: int, name: str = "lab") -> Config:
    """The Config of a phase's settings file: minimoe's defaults, changed by what the file sets."""
    return Config.from_file(lab_file(phase, name))


def seed_table(rows: list[dict], columns: dict[str, str], width: int) -> str:
    """The table every multi-seed check prints: one row per seed (rows[i] is seed i), then the min and
    max of each column over the seeds. columns: name -> format spec (e.g. {"dead": "d"})."""
    def line(label, values) -> str:
        return f"{label:>4}  " + "  ".join(f"{format(v, spec):>{width}}" for v, spec in zip(values, columns.values()))

    lines = [f"{'seed':>4}  " + "  ".join(f"{name:>{width}}" for name in columns)]
    lines += [line(s, [r[c] for c in columns]) for s, r in enumerate(rows)]
    lines += [line(label, [pick(r[c] for r in rows) for c in columns]) for label, pick in (("min", min), ("max", max))]
    return "\n".join(lines)


def names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def run(name: str, argv: list[str]) -> int:
    if name not in names():
        close = difflib.get_close_matches(name, names(), n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        print(f"error: unknown experiment {name!r}{hint}; experiments: {', '.join(names()) or '(none yet)'}")
        return 2
    return importlib.import_module(f"{__name__}.{name}").main(argv) or 0
