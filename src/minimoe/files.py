"""Files: one way to write a file so that it is never half-written, and one way to key a cache by the
source code that produced what it holds.

atomic_write writes to a temp file with a unique name in the same folder, flushes it to disk, and
renames it over the target (a rename within one folder is atomic), so a crash or Ctrl-C leaves either
the old file or the new one, never a mix; the temp file is removed on any error. An existing file
keeps its permission bits.

source_fingerprint hashes minimoe's own source (not the course engine's, not the experiments'), so a
cache entry made by other code is never read back: switching a break on or off changes the hash.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def atomic_write(path: str | Path, data: bytes) -> None:
    """Replace `path` with `data` in one step (its folder must exist)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:  # mkstemp makes it private (0600): give a new file the usual mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def source_fingerprint(exclude: tuple[str, ...] = ()) -> str:
    """A hash of every .py file of the package but course/, experiments/ and the `exclude`d paths
    (relative to src/minimoe/, e.g. "compress.py")."""
    h = hashlib.sha256()
    for f in sorted(PACKAGE.glob("**/*.py")):
        rel = f.relative_to(PACKAGE).as_posix()
        if rel not in exclude and not rel.startswith(("course/", "experiments/")):
            h.update(rel.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """Where trained models and baselines are cached: $MINIMOE_CACHE, read at each call, else .minimoe/cache."""
    return Path(os.environ.get("MINIMOE_CACHE") or ".minimoe/cache")
