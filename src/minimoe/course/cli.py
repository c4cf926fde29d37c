"""The course engine's command line: `python -m minimoe.course <command>` (the justfile's front door).

    list [--phase N] [--lang es]          every break: phase, id, title, on/off
    break on|off|status|blind|show ...    switch breaks (instructors), blind mode
    new-learner NAME / learner NAME       create / choose the active learner
    hint [ID] [--lang es] [--rung N]      the next rung of a break's hint ladder
    grade NAME [--no-tests]               grade a learner; writes grade.json + grade.md
    gradebook [--out FILE]                every learner's grades as CSV
    verify [--seeds N] [--phase P] [--break ID]   are the breaks reliable? (kill matrix)
    update-checksums                      rewrite the tests/ manifest (course developers)

Every user mistake ends in one line `error: ...` naming the problem and the fix, exit code 2.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from . import grade as grading
from . import learners
from .catalog import CourseError, load_catalog, lookup, repo_root
from .switch import pick_blind, read_state, status, switch_off, switch_on
from .verify import kill_matrix, save, verify


def _catalog(root: Path):
    return load_catalog(root)


def cmd_list(root, args):
    cat = _catalog(root)
    blind = {k for k, v in read_state(root)["breaks"].items() if v.get("blind")}
    hidden = {cat[k].phase for k in blind if k in cat}  # all of such a phase read "?", or the list gives it away
    rows = [f"{'phase':<5}  {'id':<6}  {'state':<7}  title"]
    for b in cat.values():
        if args.phase and b.phase != args.phase:
            continue
        st = status(b, root)
        known_on = st == "on" and b.id not in blind  # switched on openly: nothing to hide
        shown = "?" if b.phase in hidden and not known_on else {"on": "ON", "off": "off", "edited": "edited"}[st]
        rows.append(f"{b.phase:<5}  {b.id:<6}  {shown:<7}  {b.t('title', args.lang)}")
    print("\n".join(rows))
    if blind:
        print("? = a blind break may be among these; `just break status` says how many are on")


def cmd_break(root, args):
    cat = _catalog(root)
    learner = learners.active(root)
    if args.action == "status":
        state = read_state(root)["breaks"]
        on = [b for b in cat.values() if status(b, root) == "on"]
        edited = [b for b in cat.values() if status(b, root) == "edited"]
        shown = [b for b in on if not state.get(b.id, {}).get("blind")]
        hidden = [b for b in on if state.get(b.id, {}).get("blind")]
        if not on:
            print("no break is on")
        for b in shown:
            print(f"ON  {b.id}  {b.t('title')}  ({b.target})")
        for b in hidden:
            print(f"ON  (blind)  a break of phase {b.phase}: hunt it; `just hint` gives its hints")
        for b in edited:
            print(f"edited  {b.id}: its line in {b.target} was changed by hand (neither pristine nor broken)")
        print(f"active learner: {learner or '(none; `just new-learner <name>`)'}")
        return
    if args.action == "blind":
        if not args.target:
            raise CourseError("`just break blind <phase>` needs a phase number, e.g. 36")
        try:
            phase = int(args.target)
        except ValueError:
            raise CourseError(f"`just break blind` takes a phase number like 36, got {args.target!r}") from None
        candidates = [b for b in cat.values() if b.phase == phase]
        if not candidates:
            raise CourseError(f"phase {phase} has no breaks; phases with breaks: "
                              f"{', '.join(sorted({str(b.phase) for b in cat.values()}))}")
        b = pick_blind(candidates, root, random.Random(args.seed) if args.seed is not None else None)
        switch_on(b, root, learner, blind=True, catalog=cat)
        if learner:
            learners.record_given(root, learner, b.id, blind=True)
        print(f"a break of phase {phase} is on (blind). Train, watch the telemetry, find it; `just hint` helps.")
        return
    if args.action == "off" and args.all:
        n = 0
        for b in cat.values():
            if status(b, root) == "on":
                switch_off(b, root, cat)
                n += 1
        print(f"switched off {n} break(s)" if n else "no break was on")
        return
    if not args.target:
        raise CourseError(f"`just break {args.action}` needs a break id, e.g. `just break {args.action} 36-01`")
    b = lookup(cat, args.target)
    if args.action == "show":
        for f in ("title", "concept", "symptom", "hidden_cause", "fix", "seen_in"):
            print(f"{f}: {b.t(f, args.lang)}")
        print(f"target: {b.target}\n  old: {b.old}\n  new: {b.new}\ndetectors: " + ", ".join(b.detectors))
    elif args.action == "on":
        switch_on(b, root, learner, catalog=cat)
        if learner:
            learners.record_given(root, learner, b.id, blind=False)
        print(f"{b.id} is on: {b.t('title')} ({b.target}). `just break off {b.id}` restores it.")
    elif args.action == "off":
        identical = switch_off(b, root, cat)
        how = "byte-identical to before" if identical else "its line restored; other edits in that file kept"
        print(f"{b.id} is off: {b.target} {how}")


def cmd_new_learner(root, args):
    created = learners.new_learner(root, args.name)
    print(f"created learners/{args.name}/ with notes templates for phases "
          f"{', '.join(p.parts[-3].split('-')[1] for p in created)}; {args.name} is the active learner")


def cmd_learner(root, args):
    learners.set_active(root, learners.check_name(args.name))
    print(f"active learner: {args.name}")


def cmd_hint(root, args):
    cat = _catalog(root)
    state = read_state(root)["breaks"]
    if args.id:
        b = lookup(cat, args.id)
    else:
        blind = [cat[i] for i, v in state.items() if v.get("blind") and i in cat and status(cat[i], root) == "on"]
        if len(blind) != 1:
            raise CourseError("give a break id (`just hint 36-01`); without one, `just hint` serves the blind break, "
                              f"and {len(blind)} blind breaks are on")
        b = blind[0]
    name = learners.active(root)
    if args.rung:
        if not 1 <= args.rung <= 3:
            raise CourseError("--rung is 1, 2 or 3")
        rung, new = args.rung, False
    elif name:
        rung, new = learners.next_hint(root, name, b.id)
    else:
        raise CourseError("no active learner, so the ladder cannot remember your rung: `just new-learner <name>` "
                          "first, or ask for a rung with --rung 1")
    label = b.id if not state.get(b.id, {}).get("blind") else "the blind break"
    print(f"hint {rung}/3 for {label}: {b.hint(rung, args.lang)}")
    if not new and not args.rung:
        print("(that was the last rung; the lab page's 'Teaching moment' explains the rest)")


def cmd_grade(root, args):
    cat = _catalog(root)
    learners.check_name(args.name)
    g = grading.grade(root, cat, args.name, run_tests=not args.no_tests)
    print(grading.table(g))
    written = grading.write_reports(root, g, cat)
    if written:
        print("wrote " + ", ".join(str(p.relative_to(root)) for p in written))
    return 0 if g.breaks and all(b.passed for b in g.breaks) else 1


def cmd_gradebook(root, args):
    text = grading.gradebook(root)
    out = Path(args.out) if args.out else root / "learners" / "gradebook.csv"
    out.write_text(text, encoding="utf-8")
    print(text, end="")
    print(f"wrote {out}")


def cmd_verify(root, args):
    cat = _catalog(root)
    breaks = [b for b in cat.values() if (not args.phase or b.phase == args.phase)
              and (not args.break_id or b.id == args.break_id)]
    if args.break_id:
        lookup(cat, args.break_id)
    if not breaks:
        raise CourseError("no break matches; `just breaks` lists them")
    seeds = list(range(args.seeds))
    report = verify(root, cat, breaks, seeds, workers=args.workers)
    print(kill_matrix(report, breaks))
    save(report, root / "runs" / "verify" / "verify.json")
    for f in report.failures:
        print("FAIL " + f)
    print(f"{'OK' if report.ok else 'FAILED'}: {len(breaks)} breaks x {len(seeds)} seeds in {report.seconds:.0f} s")
    return 0 if report.ok else 1


def cmd_outputs(root, args):
    from . import outputs

    if args.check:
        not_compared = []
        problems = outputs.check(root, args.phase, fresh=not args.pages_only, not_compared=not_compared)
        for p in problems:
            print("STALE " + p)
        match = "every page matches its saved output" if args.pages_only else "all pages match a fresh run"
        if not_compared:
            match += f", except {len(not_compared)} phase(s) not compared on this machine (NOT COMPARED above)"
        print("outputs: " + (match if not problems else f"{len(problems)} problem(s)"))
        return 1 if problems else 0
    changed = outputs.generate(root, args.phase, args.only)
    print(f"updated {len(changed)} page(s)" + "".join(f"\n  {p.relative_to(root)}" for p in changed))


def cmd_update_checksums(root, args):
    (root / grading.MANIFEST).write_text(grading.compute_manifest(root), encoding="utf-8")
    print(f"wrote {grading.MANIFEST} ({len(grading.test_files(root))} test files)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minimoe.course", description="The minimoe course engine.")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("list", help="list the breaks")
    s.add_argument("--phase", type=int)
    s.add_argument("--lang", choices=("en", "es"), default="en")
    s = sub.add_parser("break", help="switch breaks on and off")
    s.add_argument("action", choices=("on", "off", "status", "blind", "show"))
    s.add_argument("target", nargs="?", help="a break id (on/off/show) or a phase (blind)")
    s.add_argument("--all", action="store_true", help="with off: every break that is on")
    s.add_argument("--lang", choices=("en", "es"), default="en")
    s.add_argument("--seed", type=int, help="with blind: make the random pick reproducible")
    s = sub.add_parser("new-learner", help="create a learner folder with notes templates")
    s.add_argument("name")
    s = sub.add_parser("learner", help="make an existing learner the active one")
    s.add_argument("name")
    s = sub.add_parser("hint", help="the next rung of a break's hint ladder")
    s.add_argument("id", nargs="?")
    s.add_argument("--lang", choices=("en", "es"), default="en")
    s.add_argument("--rung", type=int, help="show this rung (1-3) without counting it")
    s = sub.add_parser("grade", help="grade a learner")
    s.add_argument("name")
    s.add_argument("--no-tests", action="store_true", help="skip running the detectors (notes and files only)")
    s = sub.add_parser("gradebook", help="every learner's grades as CSV")
    s.add_argument("--out")
    s = sub.add_parser("verify", help="check every break is red when on and green when off, over seeds")
    s.add_argument("--seeds", type=int, default=10)
    s.add_argument("--phase", type=int)
    s.add_argument("--break", dest="break_id")
    s.add_argument("--workers", type=int, default=2)
    s = sub.add_parser("outputs", help="regenerate (or --check) the lab pages' output blocks from real runs")
    s.add_argument("--phase", type=int)
    s.add_argument("--only", help="one output by name")
    s.add_argument("--check", action="store_true", help="re-run and compare instead of writing")
    s.add_argument("--pages-only", action="store_true", help="with --check: compare pages to saved outputs only")
    sub.add_parser("update-checksums", help="rewrite the manifest of tests/ (course developers)")
    return p


COMMANDS = {"list": cmd_list, "break": cmd_break, "new-learner": cmd_new_learner, "learner": cmd_learner,
            "hint": cmd_hint, "grade": cmd_grade, "gradebook": cmd_gradebook, "verify": cmd_verify,
            "outputs": cmd_outputs, "update-checksums": cmd_update_checksums}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        root = repo_root()
        return COMMANDS[args.cmd](root, args) or 0
    except CourseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing was left half-written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
