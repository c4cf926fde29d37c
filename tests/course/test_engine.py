"""The self-study engine: switching breaks, refusals, notes, hints, grading — on scratch copies of the course."""

import json
import os
import signal
import subprocess
import sys

import pytest

from minimoe.course import grade as grading
from minimoe.course import learners, switch
from minimoe.course.catalog import CourseError, load_catalog, lookup
from minimoe.course.cli import main as course_main
from minimoe.course.notes import read_records


def test_on_off_round_trip_is_byte_exact(repo, catalog):
    for b in catalog.values():
        before = (repo / b.target).read_bytes()
        switch.switch_on(b, repo)
        assert switch.status(b, repo) == "on" and (repo / b.target).read_bytes() != before
        assert switch.switch_off(b, repo) is True
        assert (repo / b.target).read_bytes() == before


def test_refuses_when_the_line_was_edited_and_keeps_the_edit(repo, catalog):
    b = catalog["36-01"]
    path = repo / b.target
    edited = path.read_text().replace(b.old, b.old + "  # my note")
    path.write_text(edited)
    assert switch.status(b, repo) == "off"  # a trailing comment keeps the line recognisable
    path.write_text(path.read_text().replace("aux_alpha * aux", "aux_alpha * aux * 1.0"))
    with pytest.raises(CourseError, match="not in its original form.*your edits are kept"):
        switch.switch_on(b, repo)
    assert "aux_alpha * aux * 1.0" in path.read_text()


def test_already_on_and_not_on_messages(repo, catalog):
    b = catalog["36-02"]
    switch.switch_on(b, repo)
    with pytest.raises(CourseError, match="already on"):
        switch.switch_on(b, repo)
    switch.switch_off(b, repo)
    with pytest.raises(CourseError, match="is not on"):
        switch.switch_off(b, repo)


def test_off_keeps_other_edits_in_the_same_file(repo, catalog):
    b = catalog["36-03"]
    switch.switch_on(b, repo)
    path = repo / b.target
    path.write_text(path.read_text() + "\n# a learner's note\n")
    assert switch.switch_off(b, repo) is False  # not byte-identical: the learner's note is kept
    assert path.read_text().endswith("# a learner's note\n") and b.old in path.read_text()


def test_unknown_id_suggests_the_closest(catalog):
    with pytest.raises(CourseError, match="did you mean 36-01"):
        lookup(catalog, "36-1")


def test_interrupted_write_leaves_the_file_intact(repo, catalog, monkeypatch):
    b = catalog["36-01"]
    path = repo / b.target
    before = path.read_bytes()

    def boom(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        switch.switch_on(b, repo)
    assert path.read_bytes() == before
    assert not list(path.parent.glob(".*.tmp"))


def test_ctrl_c_during_the_switch_is_held_until_the_write_is_done(repo, catalog, monkeypatch):
    b = catalog["36-01"]
    real = switch.atomic_write

    def write_then_sigint(path, data):
        os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of the critical section
        real(path, data)

    monkeypatch.setattr(switch, "atomic_write", write_then_sigint)
    with pytest.raises(KeyboardInterrupt):
        switch.switch_on(b, repo)
    assert switch.status(b, repo) == "on"  # the file and the state were both written
    assert [e.token for e in switch.read_state(repo)] == ["36-01"]


@pytest.mark.parametrize("content,match", [
    ("id: [unclosed", "not valid YAML at line"),
    ("id: !!python/object:os.system x", "YAML tags"),
    ("- just\n- a list", "expected a mapping"),
])
def test_malformed_catalog_entry_names_file_and_problem(repo, content, match):
    (repo / "labs/phase-36-routing-and-balance/breaks/36-99.yaml").write_text(content)
    with pytest.raises(CourseError, match=match) as e:
        load_catalog(repo)
    assert "36-99.yaml" in str(e.value)


def test_catalog_entry_missing_a_field_is_named(repo):
    src = repo / "labs/phase-36-routing-and-balance/breaks/36-01.yaml"
    src.write_text(src.read_text().replace("hidden_cause:", "hidden_causes:"))
    with pytest.raises(CourseError, match="field 'hidden_cause'"):
        load_catalog(repo)


def test_learner_names_are_checked(repo):
    for bad in ("../x", "a/b", "ana garcia", "..", "", "ana\n", "ana\n\n"):
        with pytest.raises(CourseError, match="not allowed"):
            learners.new_learner(repo, bad)
    learners.new_learner(repo, "ana")
    with pytest.raises(CourseError, match="already exists"):
        learners.new_learner(repo, "ana")


GOOD_NOTES = {"concept": "top-k weights are a distribution over the chosen experts",
              "symptom": "w_sum was 0.002 per token instead of 1.0 at top-2",
              "hidden_cause": "the weights were normalised over the tokens, not over each token's K experts",
              "hint_1": "read the w_sum column at top-2",
              "hint_2": "what should a token's weights sum to",
              "hint_3": "check the dim of the renormalisation in router.py",
              "fix_diff": "sum over dim=-1 instead of dim=0 in the renormalisation"}


def fill_notes(repo, name, bid, phase=36, drop=(), **fields):
    rec = {"bug-id": bid, **GOOD_NOTES, **fields}
    for k in drop:
        rec.pop(k)
    lines = "\n".join(f"  {k}: {json.dumps(v)}" for k, v in rec.items())
    p = repo / f"learners/{name}/phase-{phase}/notes/breaks.md"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("# notes\n\n```yaml\n-" + lines[1:] + "\n```\n")


@pytest.mark.parametrize("content,match", [
    ("```yaml\n- bug-id: [\n```\n", "not valid YAML"),
    ("```yaml\n- bug-id: !!python/object/apply:os.system ['ls']\n```\n", "YAML tags"),
    ("x" * 300_000, "too large"),
    ("```yaml\njust text\n```\n", "expected a list of records"),
], ids=["unclosed", "tag", "huge", "not-records"])
def test_malformed_notes_get_specific_messages(repo, content, match):
    learners.new_learner(repo, "bo")
    p = repo / "learners/bo/phase-36/notes/breaks.md"
    p.write_text(content)
    with pytest.raises(CourseError, match=match):
        read_records(p)


def test_template_parses_and_is_incomplete(repo):
    learners.new_learner(repo, "cy")
    recs = read_records(repo / "learners/cy/phase-36/notes/breaks.md")
    assert len(recs) == 1 and set(recs[0]) >= {"bug-id", "fix_diff"}


def test_hints_are_recorded_per_learner(repo):
    learners.new_learner(repo, "di")
    assert learners.next_hint(repo, "di", "36-01") == (1, True)
    assert learners.next_hint(repo, "di", "36-01") == (2, True)
    assert learners.read_progress(repo, "di")["hints"]["36-01"] == [1, 2]


def test_cli_errors_are_one_line_with_exit_2(repo, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    assert course_main(["break", "on", "99-99"]) == 2
    assert course_main(["new-learner", "../evil"]) == 2
    assert course_main(["grade", "nobody"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)


def test_ctrl_c_during_grading_writes_nothing(repo, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    learners.new_learner(repo, "eve")
    fill_notes(repo, "eve", "36-03")

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(grading, "run_detectors", interrupted)
    learners.record_given(repo, "eve", "36-03", {"blind": False, "phase": 36})
    assert course_main(["grade", "eve"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (repo / "learners/eve/grade.md").exists()


def test_the_listing_does_not_give_the_blind_break_away(repo, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    assert course_main(["break", "blind", "38", "--seed", "1"]) == 0
    capsys.readouterr()

    def states(phase):
        assert course_main(["list", "--phase", phase]) == 0
        rows = capsys.readouterr().out.splitlines()[1:]
        return {r.split()[1]: r.split()[2] for r in rows if r[:2].isdigit()}

    assert len(states("38")) >= 2 and set(states("38").values()) == {"?"}
    assert set(states("36").values()) == {"off"}  # other phases show their state


# ---------------------------------------------------------------- self-study grading

def give(repo, catalog, name, bid):
    """The engine gives `name` break `bid` (as `just break on` does with an active learner)."""
    if not (repo / "learners" / name).is_dir():
        learners.new_learner(repo, name)
    switch.switch_on(catalog[bid], repo, name, catalog=catalog)


def verdict(g, exercise):
    return next(v for v in g.verdicts if v.exercise == exercise)


@pytest.mark.slow
def test_a_real_fix_passes_and_a_break_still_on_fails(repo, catalog):
    give(repo, catalog, "fixed", "36-03")
    learners.next_hint(repo, "fixed", "36-03")
    fill_notes(repo, "fixed", "36-03")
    path = repo / catalog["36-03"].target  # the learner's own fix: the line differs from both forms
    path.write_text(path.read_text().replace(catalog["36-03"].new, catalog["36-03"].old.replace(
        "dim=-1", "dim=1")))
    v = verdict(grading.grade(repo, catalog, "fixed"), "36-03")
    assert v.passed and v.reversal == "fixed otherwise" and v.detectors == "green" and v.hints_used == 1
    path.write_text(path.read_text().replace(catalog["36-03"].old.replace("dim=-1", "dim=1"), catalog["36-03"].new))
    v = verdict(grading.grade(repo, catalog, "fixed"), "36-03")
    assert not v.passed and v.reversal == "still on" and v.detectors == "red"
    assert "the injected line is still there" in v.reasons and "a detector is still red" in v.reasons


def test_case_1_switching_the_break_off_is_not_a_fix(repo, catalog):
    give(repo, catalog, "ana", "36-03")
    fill_notes(repo, "ana", "36-03")
    switch.switch_off(catalog["36-03"], repo, catalog)
    v = verdict(grading.grade(repo, catalog, "ana", run_tests=False), "36-03")
    assert not v.passed and v.reversal == "switched off by the engine"
    assert any("`just break off` restored the line" in r for r in v.reasons)


def test_case_7_and_8_filler_notes_and_breaks_never_given_fail(repo, catalog):
    learners.new_learner(repo, "eve")  # no break ever switched on
    p = repo / "learners/eve/phase-36/notes/breaks.md"
    p.write_text("```yaml\n" + "".join(
        f"- {{bug-id: '36-0{i}', concept: x, symptom: x, hidden_cause: x, hint_1: x, hint_2: x, hint_3: x, "
        f"fix_diff: x}}\n" for i in range(1, 5)) + "```\n")
    g = grading.grade(repo, catalog, "eve", run_tests=False)
    assert [v.exercise for v in g.verdicts] == ["36-01", "36-02", "36-03", "36-04"] and g.passed == 0
    assert all(v.reasons == ["never given"] and "never given to eve" in v.notes_problems[0] for v in g.verdicts)
    give(repo, catalog, "eve", "36-03")  # given, but the record is filler
    v = verdict(grading.grade(repo, catalog, "eve", run_tests=False), "36-03")
    assert not v.passed and any("too short" in p for p in v.notes_problems)
    assert any("has no number" in p or "too short" in p for p in v.notes_problems)


def test_a_record_that_copies_the_hint_ladder_is_incomplete(repo, catalog):
    """The notes' hints are the learner's own ladder: one copied from the course's (any language, any rung)
    is sent back, while the learner's own words that mention the same things pass."""
    give(repo, catalog, "kai", "36-03")
    ladder = [h["es"] for h in catalog["36-03"].hints]
    fill_notes(repo, "kai", "36-03", hint_2=ladder[1])
    v = verdict(grading.grade(repo, catalog, "kai", run_tests=False), "36-03")
    assert any("'hint_2' copies the course's hint ladder" in p for p in v.notes_problems), v.notes_problems
    fill_notes(repo, "kai", "36-03")
    v = verdict(grading.grade(repo, catalog, "kai", run_tests=False), "36-03")
    assert not any("copies" in p for p in v.notes_problems)


@pytest.mark.slow
def test_case_9_pytest_options_from_the_caller_do_not_reach_the_detectors(repo, catalog, monkeypatch):
    give(repo, catalog, "bo", "36-03")
    fill_notes(repo, "bo", "36-03")
    monkeypatch.setenv("PYTEST_ADDOPTS", "--deselect tests/phase36/test_combine_weights.py")
    monkeypatch.setenv("PYTEST_PLUGINS", "nonexistent_plugin")
    v = verdict(grading.grade(repo, catalog, "bo"), "36-03")
    assert v.detectors == "red" and not v.passed  # a verdict, not a traceback, and the break is still on


@pytest.mark.slow
def test_case_10_no_tests_writes_nothing_and_keeps_a_real_grade(in_repo, catalog, capsys):
    give(in_repo, catalog, "cy", "36-03")
    fill_notes(in_repo, "cy", "36-03")
    switch_path = in_repo / catalog["36-03"].target
    switch_path.write_text(switch_path.read_text().replace(catalog["36-03"].new, catalog["36-03"].old))
    assert course_main(["grade", "cy"]) == 0
    report = (in_repo / "learners/cy/grade.md").read_text()
    assert "| PASS |" in report
    assert course_main(["grade", "cy", "--no-tests"]) == 1
    assert "nothing was written" in capsys.readouterr().out
    assert (in_repo / "learners/cy/grade.md").read_text() == report


def test_case_2_a_changed_test_is_reported_but_the_detectors_still_judge(repo, catalog):
    give(repo, catalog, "dan", "36-03")
    fill_notes(repo, "dan", "36-03")
    t = repo / "tests/phase36/test_combine_weights.py"
    t.write_text(t.read_text().replace("worst < 1e-5", "worst < 1e9"))
    g = grading.grade(repo, catalog, "dan", run_tests=False)
    assert g.tests_changes == ["tests/phase36/test_combine_weights.py"]
    assert "not a judge" in grading.table(g) and "tests/ differs" in grading.table(g)


def test_grade_report_says_self_study_is_not_a_judge(in_repo, catalog, capsys):
    give(in_repo, catalog, "fay", "36-04")
    course_main(["grade", "fay", "--no-tests"])
    assert "honest feedback on your own checkout, not a judge" in capsys.readouterr().out


# ---------------------------------------------------------------- blind exercises (cases 11 and 13)

def test_case_11_a_blind_break_is_named_nowhere_the_engine_writes(in_repo, catalog, capsys):
    learners.new_learner(in_repo, "gil")
    assert course_main(["break", "blind", "36", "--seed", "4"]) == 0
    (on,) = [b for b in catalog.values() if switch.status(b, in_repo) == "on"]
    for f in (".minimoe/state.json", "learners/gil/progress.json"):
        assert on.id not in (in_repo / f).read_text(), f
    capsys.readouterr()
    for argv in (["break", "status"], ["hint"]):
        course_main(argv)
    seen = capsys.readouterr()
    assert on.id not in seen.out + seen.err and on.t("title") not in seen.out + seen.err
    other = next(b for b in catalog.values() if b.phase == 36 and b.id != on.id)

    def answers(bid):
        return [(course_main([*argv, bid]), capsys.readouterr()) for argv in (["break", "on"], ["break", "off"])]

    assert answers(on.id) == answers(other.id)  # switching by id tells the blind break from no other
    course_main(["list", "--phase", "36"])
    states = {row.split()[1]: row.split()[2] for row in capsys.readouterr().out.splitlines()[1:] if row[:2] == "36"}
    assert set(states.values()) == {"?"}


def test_the_break_list_names_no_bug_unless_asked_and_never_a_blind_one_before_it_is_fixed(in_repo, catalog,
                                                                                               capsys):
    """A title names a bug: `just breaks` shows ids and states, and `--titles` the titles, but not those of a
    phase whose blind break `just grade` has not seen fixed (three titles would make the hunt a multiple
    choice). Editing lines until the listing or the status changes finds nothing either."""
    course_main(["list"])
    out = capsys.readouterr().out
    assert not [b.id for b in catalog.values() if b.t("title") in out] and "--titles" in out
    learners.new_learner(in_repo, "gil")
    assert course_main(["break", "blind", "38", "--seed", "1"]) == 0
    (on,) = [b for b in catalog.values() if switch.status(b, in_repo) == "on"]
    capsys.readouterr()

    def listed():
        course_main(["list", "--titles"])
        out = capsys.readouterr().out
        return {b.phase for b in catalog.values() if b.t("title") in out}

    def status():
        course_main(["break", "status"])
        return capsys.readouterr().out

    assert 38 not in listed() and 36 in listed()
    path = in_repo / on.target
    before = status()
    path.write_text(path.read_text().replace(on.new, on.new + "  # a harmless edit"))  # still broken
    assert status() == before and 38 not in listed()
    learners.record_graded(in_repo, "gil", "blind-1", fixed=True, passed=False)  # as `just grade` does, once fixed
    assert 38 in listed()


def test_the_hunt_page_prints_in_the_terminal_and_names_no_break(in_repo, catalog, capsys):
    for lang in ("en", "es"):
        assert course_main(["hunt", "36", "--lang", lang]) == 0
        out = capsys.readouterr().out
        assert "just break blind 36" in out and "just test tests/phase36" in out
        for b in (b for b in catalog.values() if b.phase == 36):
            assert b.id not in out and b.t("title", lang) not in out
    assert course_main(["hunt", "99"]) == 2 and "no phase 99" in capsys.readouterr().err


def test_case_13_a_partial_fix_keeps_the_ladder_and_the_state(in_repo, catalog, capsys):
    learners.new_learner(in_repo, "hal")
    assert course_main(["break", "blind", "36", "--seed", "4"]) == 0
    (on,) = [b for b in catalog.values() if switch.status(b, in_repo) == "on"]
    path = in_repo / on.target
    path.write_text(path.read_text().replace(on.new, on.new + "  # looked at this"))  # still broken, line edited
    path.write_text(path.read_text().replace(on.new + "  # looked at this", on.new.replace(" ", "  ", 1)))
    assert switch.status(on, in_repo) == "edited"
    capsys.readouterr()
    assert course_main(["hint"]) == 0 and course_main(["hint"]) == 0
    assert "hint 2/3 for the blind break (blind-1)" in capsys.readouterr().out
    assert course_main(["break", "off", "--all"]) == 0
    out = capsys.readouterr().out
    assert "left alone a blind break of phase 36" in out and "No break was on" not in out
    assert [e.token for e in switch.read_state(in_repo)] == ["blind-1"]
    assert course_main(["break", "blind", "36"]) == 2
    assert "hand-edited tree" in capsys.readouterr().err
    path.write_text(path.read_text().replace(on.new.replace(" ", "  ", 1), on.old))  # the real fix
    assert course_main(["break", "off", "--all"]) == 0
    assert "closed a blind break of phase 36" in capsys.readouterr().out and switch.read_state(in_repo) == []


@pytest.mark.slow
def test_case_14_the_grade_does_not_tell_a_blind_break_before_it_is_fixed(in_repo, catalog, capsys):
    """The grade of a blind exercise names neither the break nor its line, and cannot be asked whether a
    record's bug-id is right, until the break is fixed; then a record with the right id passes."""
    learners.new_learner(in_repo, "ivy")
    assert course_main(["break", "blind", "36", "--seed", "4"]) == 0
    (on,) = [b for b in catalog.values() if switch.status(b, in_repo) == "on"]
    wrong = next(b.id for b in catalog.values() if b.phase == 36 and b.id != on.id)
    course_main(["list", "--titles", "--phase", "36"])
    assert on.t("title") not in capsys.readouterr().out
    for bid in ("", wrong, on.id):  # no id, a wrong guess, the right one: the same answer while unfixed
        fill_notes(in_repo, "ivy", bid)
        capsys.readouterr()
        assert course_main(["grade", "ivy"]) == 1
        out = capsys.readouterr().out
        assert on.id not in out.replace(f"record {on.id}", "") and on.t("title") not in out, bid
        assert "not shown until fixed" in out and "still there" not in out and "never given" not in out
        assert "judged once the break of blind-1 is fixed" in out
        seen = [line for line in out.splitlines() if line.startswith("blind-1")]
        assert seen == [seen[0]] and "FAIL" in seen[0]
    path = in_repo / on.target
    path.write_text(path.read_text().replace(on.new, on.old))  # the fix
    fill_notes(in_repo, "ivy", wrong)
    assert course_main(["grade", "ivy"]) == 1
    out = capsys.readouterr().out
    assert "no record for the break you fixed (blind-1)" in out and on.id not in out
    assert f"{wrong} was never given" in out  # once fixed, a wrong record is called out
    course_main(["list", "--titles", "--phase", "36"])
    assert on.t("title") in capsys.readouterr().out  # the grade saw it fixed: the titles name it, for the notes
    fill_notes(in_repo, "ivy", on.id)
    assert course_main(["grade", "ivy"]) == 0
    assert "reverted" in capsys.readouterr().out
    for _ in range(3):
        course_main(["hint"])  # read after the pass
    capsys.readouterr()
    assert course_main(["grade", "ivy"]) == 0
    assert "0/3" in capsys.readouterr().out  # the rungs read after the first pass do not count


# ---------------------------------------------------------------- bad input (one line, exit 2, nothing lost)

@pytest.mark.parametrize("content", ["[]", '{"given": 5}', '{"given": {"36-01": 3}}', "{not json", "\xff"])
def test_a_damaged_progress_file_is_refused_and_kept(in_repo, capsys, content):
    learners.new_learner(in_repo, "ida")
    p = in_repo / "learners/ida/progress.json"
    p.write_bytes(content.encode("latin-1"))
    assert course_main(["break", "on", "36-03"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "progress.json is damaged" in err and len(err.splitlines()) == 1
    assert p.read_bytes() == content.encode("latin-1")


@pytest.mark.parametrize("content", ["[]", '{"exercises": 5}', '{"exercises": [{"token": 1}]}', "{x"])
def test_a_damaged_state_file_is_refused_and_kept(in_repo, capsys, content):
    p = in_repo / ".minimoe/state.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(content)
    assert course_main(["break", "status"]) == 2
    assert "state.json is damaged" in capsys.readouterr().err and p.read_text() == content


def test_a_catalog_entry_that_is_a_folder_or_a_device_is_refused(repo):
    breaks = repo / "labs/phase-36-routing-and-balance/breaks"
    (breaks / "36-98.yaml").mkdir()
    with pytest.raises(CourseError, match="not a regular file"):
        load_catalog(repo)
    (breaks / "36-98.yaml").rmdir()
    (breaks / "36-98.yaml").symlink_to("/dev/zero")
    with pytest.raises(CourseError, match="not a regular file"):
        load_catalog(repo)


def test_a_non_utf8_source_file_is_named(in_repo, catalog, capsys):
    p = in_repo / "src/minimoe/router.py"
    p.write_bytes(p.read_bytes() + b"\n# caf\xe9\n")
    assert course_main(["list"]) == 2
    err = capsys.readouterr().err
    assert "router.py is not UTF-8" in err and "0xe9" in err
    learners.new_learner(in_repo, "jo")
    assert course_main(["grade", "jo", "--no-tests"]) in (1, 2)


def test_an_immutable_target_is_refused_with_nothing_changed(repo, catalog):
    b = catalog["36-03"]
    path = repo / b.target
    before = path.read_bytes()
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here: an immutable file cannot be made")
    try:
        with pytest.raises(CourseError, match="permission denied .*nothing was changed"):
            switch.switch_on(b, repo)
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    assert path.read_bytes() == before and switch.read_state(repo) == []
    assert not list(path.parent.glob(".*.tmp"))


def test_verify_seeds_are_a_count_or_a_list():
    from minimoe.course.cli import parse_seeds

    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("3,17") == [3, 17] and parse_seeds("0,") == [0]
    for bad in ("0", "-1", "a,b", ","):
        with pytest.raises(CourseError, match="one seed with a comma: 0,"):
            parse_seeds(bad)


def test_no_break_leaves_a_lint_warning_that_points_at_its_line(repo, catalog):
    """`just lint` runs ruff over the learner's code: a break that leaves an unused name or import behind would
    have ruff name the broken function before any hunt. Each break, switched on, lints as clean as the pristine
    file."""
    def lint(path):
        out = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "--no-cache", path],
                             cwd=repo, capture_output=True, text=True)
        return sorted(line.split(":", 3)[-1] for line in out.stdout.splitlines() if line.startswith(path))

    loud = []
    for b in catalog.values():
        before = lint(b.target)
        switch.switch_on(b, repo)
        after = lint(b.target)
        switch.switch_off(b, repo, catalog)
        if after != before:
            loud.append(f"{b.id} ({b.target}): {sorted(set(after) - set(before))}")
    assert not loud, "breaks that ruff points at:\n" + "\n".join(loud)
