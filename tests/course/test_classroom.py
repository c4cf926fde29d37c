"""Classroom mode: handouts carry the break and no answer; the autograder judges only what a learner
may change, with the instructor's own detectors, and every cheat of the list below ends in FAIL.

The cheats (issue "classroom mode", cases 1-13) each become a submission graded here:
  1 `just break off` instead of a fix: the handout has no such command (absent, not refused)
  2 a cosmetic change that keeps the bug + loosened detectors      3 a root conftest.py forcing passes
  4 PYTHONPATH / PYTEST_PLUGINS from the caller                     5 a forged __pycache__ .pyc
  6 a hand-written grade.json                                       7 filler notes on an untouched handout
  8 notes for a break that was never handed out                     9 PYTEST_ADDOPTS=--deselect
  11 blind handouts name nothing (files and history)
(10, 12 and 13 are self-study cases: test_engine.py and test_switch_safety.py.)
"""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from minimoe.course import autograde, classroom
from minimoe.course.cli import main as course_main
from minimoe.course.runner import Outcome

from .conftest import git


def handout(in_repo, capsys, *argv) -> dict:
    assert course_main(["handout", *argv]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return classroom.read_roster(in_repo / "classroom")


def learner_copy(repo, roster, who, dest: Path) -> Path:
    """What a learner gets: a clone of their bundle."""
    hid = roster["learners"].get(who) or roster["class"]
    bundle = repo / "classroom" / roster["handouts"][hid]["bundle"]
    subprocess.run(["git", "clone", "-q", str(bundle), str(dest)], check=True)
    return dest


def write_notes(copy: Path, name: str, code: str, phase: int = 36, **fields):
    rec = {"bug-id": code, "concept": "top-k weights form a distribution over a token's experts",
           "symptom": "w_sum was 0.002 per token instead of 1.0 with two experts",
           "hidden_cause": "the weights were divided by a sum over the tokens instead of over the K experts",
           "hint_1": "read the w_sum column of the health table", "hint_2": "what should a token's weights sum to",
           "hint_3": "look at the renormalisation in the router", "fix_diff": "sum over dim -1, not dim 0"}
    rec.update(fields)
    p = copy / f"learners/{name}/phase-{phase}/notes/breaks.md"
    p.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(f"  {k}: {json.dumps(v)}" for k, v in rec.items())
    p.write_text("```yaml\n-" + body[1:] + "\n```\n")


def fix(copy: Path, catalog, bid: str, new_text: str | None = None):
    b = catalog[bid]
    p = copy / b.target
    p.write_text(p.read_text().replace(b.new, new_text or b.old))


# ---------------------------------------------------------------- handouts

def test_a_handout_carries_the_break_and_no_answer(in_repo, catalog, capsys):
    roster = handout(in_repo, capsys, "--breaks", "36-03", "--learners", "ana")
    h = roster["handouts"][roster["learners"]["ana"]]
    repo = in_repo / "classroom" / h["repo"]
    b = catalog["36-03"]
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"  # one commit, already broken
    assert b.new in (repo / b.target).read_text()
    history = git(repo, "log", "-p", "--all")
    for f in repo.rglob("*"):
        if f.is_file() and ".git" not in f.parts and f.suffix != ".png":
            text = f.read_text()
            assert b.old not in text and b.t("fix") not in text and b.t("hidden_cause") not in text, f
    assert b.old not in history
    assert not (repo / "src/minimoe/course").exists() and not (repo / "tests/course").exists()
    assert not list(repo.glob("labs/*/breaks")) and not list(repo.glob("labs/*/outputs.yaml"))
    recipes = (repo / "justfile").read_text()
    for absent in ("\nbreak ", "verify-breaks", "gradebook", "update-checksums", "handout", "autograde",
                   "docs-outputs", "\ngrade "):
        assert absent not in recipes
    for present in ("\ntest ", "\nmoe-train ", "\nhint ", "\nnotes ", "\nsubmit "):
        assert present in recipes
    assert (repo / "learners/ana/phase-36/notes/breaks.md").is_file()
    assert (in_repo / "classroom" / h["bundle"]).is_file()


def test_a_blind_handout_names_nothing(in_repo, catalog, capsys):
    """The mechanism, on a course whose phase-36 pages and tests name no break (scrubbed here)."""
    for p in [*in_repo.glob("labs/phase-36-*/README*.md"), *in_repo.glob("labs/phase-36-*/00-*.md")]:
        p.write_text("# Phase 36\n\nTrain, read the routing health report, hunt.\n")
    for p in [*in_repo.glob("tests/phase36/*.py"), *in_repo.glob("src/minimoe/**/*.py")]:
        text = p.read_text()
        for b in catalog.values():
            text = text.replace(b.id, "a break")
        p.write_text(text)
    git(in_repo, "commit", "-qam", "scrubbed")
    roster = handout(in_repo, capsys, "--phase", "36", "--blind", "--learners", "bo,cy", "--seed", "3")
    for who in ("bo", "cy"):
        h = roster["handouts"][roster["learners"][who]]
        repo = in_repo / "classroom" / h["repo"]
        assert list(h["codes"]) == ["X1"]
        given = catalog[h["codes"]["X1"]]
        everything = git(repo, "log", "-p", "--all") + "".join(
            f.read_text() for f in repo.rglob("*") if f.is_file() and ".git" not in f.parts and f.suffix != ".png")
        for b in catalog.values():
            assert b.id not in everything and b.t("title") not in everything and b.t("title", "es") not in everything
        assert given.old not in everything and given.new in (repo / given.target).read_text()
        assert '"X1"' in (repo / "exercise/exercises.json").read_text()


def test_a_blind_handout_of_the_real_course_names_nothing(in_repo, catalog, capsys):
    """Every phase's blind handout, built from the course as it is (nothing scrubbed), with every break of
    the phase on at once: no break id or title anywhere in its files or its history, and none of the
    given breaks' original lines."""
    for phase in sorted({b.phase for b in catalog.values()}):
        mine = [b for b in catalog.values() if b.phase == phase]
        cls = f"classroom-{phase}"
        assert course_main(["handout", "--phase", str(phase), "--count", str(len(mine)), "--blind", "--class",
                            "--seed", "1", "--classroom", cls]) == 0, capsys.readouterr().err
        capsys.readouterr()
        roster = classroom.read_roster(in_repo / cls)
        h = roster["handouts"][roster["class"]]
        repo = in_repo / cls / h["repo"]
        assert sorted(h["codes"].values()) == sorted(b.id for b in mine)
        files = {f.relative_to(repo).as_posix(): f.read_text(errors="replace") for f in repo.rglob("*")
                 if f.is_file() and ".git" not in f.parts and f.suffix != ".png"}
        files["git log -p --all"] = git(repo, "log", "-p", "--all")
        for where, text in files.items():
            for b in catalog.values():
                for needle in (b.id, b.t("title"), b.t("title", "es")):
                    assert needle not in text, f"phase {phase}'s blind handout: {where} names {needle!r}"
            for b in mine:
                assert b.old.strip() not in text, f"phase {phase}'s blind handout: {where} holds {b.id}'s line"
        assert all(b.new in (repo / b.target).read_text() for b in mine)


def test_a_handout_that_would_leak_is_refused_and_nothing_is_written(in_repo, catalog, capsys):
    readme = next(in_repo.glob("labs/phase-36-*/README.md"))
    readme.write_text(readme.read_text() + f"\nSee also: {catalog['36-02'].t('title')}.\n")
    assert course_main(["handout", "--breaks", "36-03", "--blind", "--learners", "dee"]) == 2
    err = capsys.readouterr().err
    assert "would give answers away" in err and "README.md: 36-02's title" in err
    assert not (in_repo / "classroom/handouts").exists() or not any((in_repo / "classroom/handouts").iterdir())
    assert "dee" not in classroom.read_roster(in_repo / "classroom")["learners"]


def test_handout_bad_input(in_repo, capsys):
    for argv, msg in ((["--learners", "ana"], "say what to hand out"),
                      (["--breaks", "36-03"], "say who it is for"),
                      (["--breaks", "36-3", "--class"], "did you mean 36-03"),
                      (["--phase", "99", "--class"], "phase 99 has no breaks"),
                      (["--phase", "36", "--count", "9", "--class"], "--count 9"),
                      (["--breaks", "36-03", "--learners", "a/b"], "not allowed")):
        assert course_main(["handout", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err
    handout(in_repo, capsys, "--breaks", "36-03", "--learners", "ana")
    assert course_main(["handout", "--breaks", "36-04", "--learners", "ana"]) == 2
    assert "already has a handout" in capsys.readouterr().err


# ---------------------------------------------------------------- what the autograder takes (fast: detectors stubbed)

def test_autograde_reads_only_the_package_and_the_notes(in_repo, catalog, capsys, tmp_path, monkeypatch):
    roster = handout(in_repo, capsys, "--breaks", "36-03", "--learners", "ana")
    sub = learner_copy(in_repo, roster, "ana", tmp_path / "ana")
    fix(sub, catalog, "36-03")
    write_notes(sub, "ana", "36-03")
    (sub / "conftest.py").write_text("raise SystemExit('a learner conftest ran')\n")
    (sub / "tests/phase36/test_combine_weights.py").write_text("def test_nothing():\n    pass\n")
    (sub / "learners/ana/phase-36/notes/grade.json").write_text('{"passed": true}')
    (sub / "src/minimoe/__pycache__").mkdir()
    (sub / "src/minimoe/__pycache__/router.cpython-311.pyc").write_bytes(b"forged")
    seen = {}

    def stub(root, ids, seeds, workers=1, timeout=0):
        seen["root"], seen["seeds"] = root, seeds
        seen["files"] = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        seen["router"] = (root / catalog["36-03"].target).read_text()
        seen["test"] = (root / "tests/phase36/test_combine_weights.py").read_text()
        return [Outcome(d, s, True, 0.1, "") for d in ids for s in seeds]

    monkeypatch.setattr(autograde, "run_detectors", stub)
    (r,) = autograde.autograde(in_repo, catalog, in_repo / "classroom", [sub], echo=lambda *a: None)
    assert [x["result"] for x in r["exercises"]] == ["PASS"]
    assert len(seen["seeds"]) >= 3 and catalog["36-03"].old in seen["router"]
    assert "def test_nothing" not in seen["test"]  # the instructor's detectors, not the learner's
    assert "conftest.py" not in seen["files"] and not any("__pycache__" in f for f in seen["files"])
    assert set(r["ignored_changes"]) >= {"conftest.py", "tests/phase36/test_combine_weights.py",
                                         "learners/ana/phase-36/notes/grade.json"}
    assert r["diff"]["added"] == 1 and r["diff"]["removed"] == 1


def test_autograde_refuses_bad_submissions_one_line_each(in_repo, catalog, capsys, tmp_path):
    handout(in_repo, capsys, "--breaks", "36-03", "--learners", "ana")
    (tmp_path / "ben").mkdir()  # not on the roster, and not a handout
    (tmp_path / "notes.txt").write_text("hi")
    bad_tar = tmp_path / "ana.tar.gz"
    bad_tar.write_bytes(b"not a tar")
    assert course_main(["autograde", str(tmp_path / "ben"), str(tmp_path / "notes.txt"), str(bad_tar),
                        str(tmp_path / "missing")]) == 2
    out = capsys.readouterr().out
    assert out.count("ERROR ") == 4
    assert "no src/minimoe/ package" in out and "expected a folder, a .bundle" in out
    assert "cannot be read" in out and "no such file or folder" in out


def test_archives_are_read_safely(tmp_path):
    src = tmp_path / "wrap/src/minimoe"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("x = 1\n")
    (src / "router.py").write_text("y = 2\n")
    tar = tmp_path / "ana.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(tmp_path / "wrap", arcname="ana")
        evil = tarfile.TarInfo("../../etc/evil.py")
        evil.size = 1
        t.addfile(evil, fileobj=__import__("io").BytesIO(b"x"))
        link = tarfile.TarInfo("ana/src/minimoe/loss.py")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
    s = autograde.read_submission(tar, None, tmp_path)
    assert s.learner == "ana" and sorted(s.files) == ["src/minimoe/__init__.py", "src/minimoe/router.py"]
    z = tmp_path / "ana.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("src/minimoe/__init__.py", "x = 1\n")
        f.writestr("../outside.py", "x")
        f.writestr("src/minimoe/course/cli.py", "evil = True\n")
    s = autograde.read_submission(z, None, tmp_path)
    assert sorted(s.files) == ["src/minimoe/__init__.py"]


# ---------------------------------------------------------------- the cheats, graded for real

@pytest.mark.slow
def test_every_cheat_fails_and_a_real_fix_passes(in_repo, catalog, capsys, tmp_path, monkeypatch):
    names = ["fixed", "untouched", "cosmetic", "conftest", "envvars", "pycache", "gradejson", "filler",
             "notgiven", "review", "otherwise"]
    roster = handout(in_repo, capsys, "--breaks", "36-03", "--learners", ",".join(names))
    b = catalog["36-03"]
    subs = {n: learner_copy(in_repo, roster, n, tmp_path / "submissions" / n) for n in names}
    for n, sub in subs.items():
        write_notes(sub, n, "36-03")
    fix(subs["fixed"], catalog, "36-03")
    fix(subs["otherwise"], catalog, "36-03", b.old.replace("dim=-1", "dim=1"))  # a different, correct fix
    fix(subs["cosmetic"], catalog, "36-03", b.new.replace("dim=0", "dim=-2"))  # the same bug, reworded (case 2)
    loosened = subs["cosmetic"] / "tests/phase36/test_combine_weights.py"
    loosened.write_text(loosened.read_text().replace("worst < 1e-5", "worst < 1e9"))
    (subs["conftest"] / "conftest.py").write_text(  # case 3: every outcome forced to passed
        "import pytest\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
        "    out = yield\n    out.get_result().outcome = 'passed'\n")
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "forcepass.py").write_text((subs["conftest"] / "conftest.py").read_text())
    monkeypatch.setenv("PYTHONPATH", str(plugin))  # case 4
    monkeypatch.setenv("PYTEST_PLUGINS", "forcepass")
    monkeypatch.setenv("PYTEST_ADDOPTS", "--deselect tests/phase36/test_combine_weights.py")  # case 9
    cache = subs["pycache"] / "tests/phase36/__pycache__"  # case 5: bytecode of a test that always passes
    cache.mkdir()
    (cache / f"test_combine_weights.cpython-{sys.version_info[0]}{sys.version_info[1]}-pytest-8.pyc").write_bytes(
        b"\x00" * 64)
    (subs["gradejson"] / "learners/gradejson/phase-36/notes/grade.json").write_text(  # case 6
        '{"learner": "someone-else", "breaks": [{"id": "36-03", "passed": true}]}')
    write_notes(subs["filler"], "filler", "36-03", concept="x", symptom="x", hidden_cause="x", hint_1="x",
                hint_2="x", hint_3="x", fix_diff="x")  # case 7
    fix(subs["notgiven"], catalog, "36-03")
    notes = subs["notgiven"] / "learners/notgiven/phase-36/notes/breaks.md"  # case 8: a record for 36-01 too
    notes.write_text(notes.read_text().replace("```\n", "", 1).rstrip("`\n") + "\n" + notes.read_text().split(
        "```yaml\n")[1].replace('"36-03"', '"36-01"'))
    fix(subs["review"], catalog, "36-03")
    router = subs["review"] / b.target
    router.write_text(router.read_text() + "\nimport sys\nsys.modules.get('_pytest')\n")
    bundle_dir = tmp_path / "bundles"
    bundle_dir.mkdir()
    for n in ("fixed", "gradejson"):  # two arrive as bundles (`just submit`), one as an archive
        subprocess.run([sys.executable, "-m", "exercise", "submit", "--out", str(bundle_dir / f"{n}.bundle")],
                       cwd=subs[n], check=True, capture_output=True, env={**os.environ, "PYTHONPATH": ""})
    shutil.make_archive(str(bundle_dir / "filler"), "gztar", subs["filler"].parent, "filler")
    paths = [bundle_dir / "fixed.bundle", bundle_dir / "gradejson.bundle", bundle_dir / "filler.tar.gz"] + [
        subs[n] for n in names if n not in ("fixed", "gradejson", "filler")]
    assert course_main(["autograde", "--jobs", "2", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    results = {p.stem: json.loads(p.read_text()) for p in (in_repo / "classroom/results").glob("*.json")}
    verdict = {n: results[n]["exercises"][0] for n in names}
    assert verdict["fixed"]["result"] == "PASS" and verdict["otherwise"]["result"] == "PASS", out
    assert verdict["otherwise"]["reversal"] == "fixed otherwise"
    for n in ("untouched", "cosmetic", "conftest", "envvars", "pycache", "gradejson"):
        assert verdict[n]["result"] == "FAIL" and "a detector is still red" in verdict[n]["reasons"], (n, out)
    assert verdict["untouched"]["reversal"] == "still on"
    assert verdict["cosmetic"]["reversal"] == "fixed otherwise"  # reworded, so only the detectors catch it
    assert "tests/phase36/test_combine_weights.py" in results["cosmetic"]["ignored_changes"]
    assert verdict["filler"]["result"] == "FAIL" and "the notes record is incomplete" in verdict["filler"]["reasons"]
    assert results["notgiven"]["not_given"][0]["exercise"] == "36-01"
    assert results["notgiven"]["not_given"][0]["result"] == "FAIL"
    assert verdict["review"]["result"] == "REVIEW" and any("sys.modules" in r for r in results["review"]["review"])
    assert course_main(["gradebook"]) == 0
    book = (in_repo / "classroom/gradebook.csv").read_text()
    assert "someone-else" not in book and "gradejson,36-03,36-03" in book
    rows = list(csv.DictReader(io.StringIO(book)))
    assert len(rows) == len(names) + 1 and all(len(r["submission_sha256"]) == 64 for r in rows)  # each its hash


FORGE = """
try:  # every outcome the results plugin records becomes a pass
    import minimoe.course.results_plugin as _rp

    class _Passed(dict):
        def __setitem__(self, key, value):
            super().__setitem__(key, {**value, "outcome": "passed", "message": ""})

    _rp._results = _Passed()
except ImportError:
    pass
"""


@pytest.mark.slow
def test_the_red_teams_cheats_do_not_pass(in_repo, catalog, capsys, tmp_path):
    """Cheats found by trying to fool this grader: forged outcomes, a fix that holds only while the detectors
    look, another learner's bundle, a comment reworded on the injected line. None passes; the judge's own
    files written to by a submission stop the grading."""
    names = ["forge", "gradmode", "owner", "copycat", "comment"]
    roster = handout(in_repo, capsys, "--breaks", "36-03", "--learners", ",".join(names))
    b = catalog["36-03"]
    subs = {n: learner_copy(in_repo, roster, n, tmp_path / "submissions" / n) for n in names}
    for n, sub in subs.items():
        write_notes(sub, n, "36-03")
    router = subs["forge"] / b.target
    router.write_text(router.read_text().replace(b.new, b.new.replace("# normalise", "# renormalise")) + FORGE)
    fix(subs["gradmode"], catalog, "36-03", "weights_TK = weights_TK / weights_TK.sum(dim=0 if "
        "torch.is_grad_enabled() else -1, keepdim=True)")  # right only under no_grad, as the health report reads
    fix(subs["comment"], catalog, "36-03", b.new.replace("# normalise the weights", "# fixed: sum over experts"))
    fix(subs["owner"], catalog, "36-03")
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    subprocess.run([sys.executable, "-m", "exercise", "submit", "--out", str(bundles / "owner.bundle")],
                   cwd=subs["owner"], check=True, capture_output=True, env={**os.environ, "PYTHONPATH": ""})
    shutil.copy(bundles / "owner.bundle", bundles / "copycat.bundle")  # the owner's work, under another name
    paths = [subs["forge"], subs["gradmode"], subs["comment"], bundles / "owner.bundle", bundles / "copycat.bundle"]
    assert course_main(["autograde", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    results = {p.stem: json.loads(p.read_text()) for p in (in_repo / "classroom/results").glob("*.json")}
    verdict = {n: results[n]["exercises"][0] for n in names}
    assert verdict["owner"]["result"] == "PASS", out
    assert verdict["copycat"]["result"] == "REVIEW" and any("handout commit" in r for r in results["copycat"]["review"])
    assert verdict["forge"]["result"] == "FAIL" and verdict["forge"]["reversal"] == "still on"
    assert any("not trusted" in f for f in verdict["forge"]["detector_failures"]), out
    assert verdict["gradmode"]["result"] != "PASS" and verdict["gradmode"]["detectors"] == "red", out
    assert verdict["comment"]["result"] == "FAIL" and verdict["comment"]["reversal"] == "still on"
    assert not (in_repo / "classroom/cache").exists()  # outcomes are never kept where a learner's code could write

    tamper = learner_copy(in_repo, roster, "forge", tmp_path / "tamper" / "forge")
    write_notes(tamper, "forge", "36-03")
    fix(tamper, catalog, "36-03")
    judge = in_repo / "tests/phase36/test_combine_weights.py"
    (tamper / b.target).write_text((tamper / b.target).read_text() + f"\nopen({str(judge)!r}, 'a').write('# x')\n")
    assert course_main(["autograde", str(tamper)]) == 2
    err = capsys.readouterr().err
    assert "the judge changed while" in err and "tests/phase36/test_combine_weights.py" in err


def test_changes_that_could_hide_a_symptom_are_sent_for_review():
    before = {"src/minimoe/router.py": b"a = 1\nb = 2\n", "src/minimoe/telemetry.py": b"c = 3\n"}
    fixed = {**before, "src/minimoe/router.py": b"a = 1\nb = 3\n"}
    per, review = autograde.diff_stats(before, fixed, {"src/minimoe/router.py"})
    assert per == {"src/minimoe/router.py": [1, 1]} and review == []
    noted = {**fixed, "src/minimoe/telemetry.py": b"c = 3\n# I read this file\n"}
    assert autograde.diff_stats(before, noted, {"src/minimoe/router.py"})[1] == []  # a comment elsewhere is fine
    hidden = {**fixed, "src/minimoe/telemetry.py": b"c = 0\n"}  # the thermometer, not the fever
    assert autograde.diff_stats(before, hidden, {"src/minimoe/router.py"})[1] == [
        "src/minimoe/telemetry.py: code changed outside the exercise's file (+1/-1)"]
    for sneaky in (b"x = __import__('o' + 's')._exit", b"import sys; sys.modules.clear()",
                   b"open(environ['MINIMOE_RESULTS'], 'w')", b"().__class__.__base__.__subclasses__()"):
        after = {**before, "src/minimoe/router.py": b"a = 1\nb = 3\n" + sneaky + b"\n"}
        assert autograde.diff_stats(before, after, {"src/minimoe/router.py"})[1], sneaky


@pytest.mark.parametrize("sneaky", [
    b'_ = "#"; import os',  # a '#' inside a string starts no comment
    b"m = getattr(__import__('min' + 'imoe'), 'cour' + 'se')",
    b"vars(obj)['_results'] = {}",
    b"w = w / w.sum() if not torch.is_grad_enabled() else w",  # right only while the detectors look
], ids=["hash-in-string", "getattr", "vars", "grad-mode"])
def test_what_a_pass_could_be_forged_with_goes_to_review(sneaky):
    before = {"src/minimoe/router.py": b"a = 1\nb = 2\n"}
    after = {"src/minimoe/router.py": b"a = 1\nb = 3\n" + sneaky + b"\n"}
    assert autograde.diff_stats(before, after, {"src/minimoe/router.py"})[1], sneaky


def test_a_file_python_would_read_otherwise_than_the_diff_shows_goes_to_review():
    """A coding cookie turns what the diff shows as comments into code (UTF-7: '+AAo-' is a newline)."""
    before = {"src/minimoe/router.py": b"a = 1\n", "src/minimoe/telemetry.py": b"c = 3\n"}
    utf7 = b"# -*- coding: utf-7 -*-\nc = 3\n#+AAo-import os\n"
    after = {**before, "src/minimoe/telemetry.py": utf7}
    review = autograde.diff_stats(before, after, {"src/minimoe/router.py"})[1]
    assert any("source encoding utf-7" in r for r in review) and any("outside the exercise" in r for r in review)
    comment_only = {**before, "src/minimoe/router.py": b"a = 1  # looked at it\n"}
    assert autograde.diff_stats(before, comment_only, {"src/minimoe/router.py"}) == (
        {"src/minimoe/router.py": [1, 1]}, [])


def test_a_learner_named_like_an_ignored_folder_keeps_their_notes():
    """The handout's .gitignore (the checkout's) ignores build/, site/, runs/, classroom/ at the top only:
    learners/build/... is submitted like any other learner's notes."""
    root = Path(__file__).resolve().parents[2]
    for name in ("build", "site", "runs", "classroom"):
        rel = f"learners/{name}/phase-36/notes/breaks.md"
        ignored = subprocess.run(["git", "check-ignore", "-q", rel], cwd=root).returncode == 0
        assert not ignored, rel
        assert subprocess.run(["git", "check-ignore", "-q", f"{name}/x"], cwd=root).returncode == 0
