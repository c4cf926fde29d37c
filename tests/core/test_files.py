"""One atomic write and one source fingerprint for the whole package (files.py)."""

import os

import pytest

from minimoe import files


def test_atomic_write_replaces_the_file_and_keeps_its_mode(tmp_path):
    p = tmp_path / "state.json"
    p.write_text("old")
    os.chmod(p, 0o640)
    files.atomic_write(p, b"new")
    assert p.read_bytes() == b"new" and (p.stat().st_mode & 0o777) == 0o640
    files.atomic_write(tmp_path / "fresh.json", b"{}")
    assert (tmp_path / "fresh.json").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["fresh.json", "state.json"]  # no temp file left


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_interrupted_atomic_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    p = tmp_path / "telemetry.json"
    p.write_text("old")

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(p, b"new")
    assert p.read_text() == "old" and [f.name for f in tmp_path.iterdir()] == ["telemetry.json"]


def test_the_source_fingerprint_follows_the_package_source(tmp_path, monkeypatch):
    pkg = tmp_path / "minimoe"
    (pkg / "course").mkdir(parents=True)
    (pkg / "router.py").write_text("a = 1\n")
    (pkg / "compress.py").write_text("b = 1\n")
    (pkg / "course" / "cli.py").write_text("c = 1\n")
    monkeypatch.setattr(files, "PACKAGE", pkg)
    before = files.source_fingerprint(), files.source_fingerprint(exclude=("compress.py",))
    (pkg / "course" / "cli.py").write_text("c = 2\n")  # the course engine: not part of it
    assert (files.source_fingerprint(), files.source_fingerprint(exclude=("compress.py",))) == before
    (pkg / "compress.py").write_text("b = 2\n")
    assert files.source_fingerprint() != before[0] and files.source_fingerprint(exclude=("compress.py",)) == before[1]
    (pkg / "router.py").write_text("a = 2\n")  # e.g. a break switched on
    assert files.source_fingerprint(exclude=("compress.py",)) != before[1]


def test_the_cache_folder_is_read_when_asked(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIMOE_CACHE", str(tmp_path))
    assert files.cache_dir() == tmp_path
    monkeypatch.delenv("MINIMOE_CACHE")
    assert str(files.cache_dir()) == ".minimoe/cache"
