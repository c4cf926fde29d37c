"""The course engine's command line: `python -m minimoe.course <command>` (the justfile's front door).

Self-study (one checkout, one honest person switching their own breaks):
    list [--phase N] [--lang es]          every break: phase, id, title, on/off
    break on|off|status|blind|show ...    switch breaks; blind mode hides which one is on
    new-learner NAME / learner NAME       create / choose the active learner
    hint [ID|CODE] [--lang es] [--rung N] the next rung of an exercise's hint ladder
    grade NAME [--no-tests]               honest feedback on your own checkout (not a judge)

Classroom (the instructor's side; learners work in handouts and never see this checkout):
    handout --phase N|--breaks IDS [--blind] [--learners A,B | --class]   build learner repositories
    autograde SUBMISSION... [--jobs N]    grade submissions with the instructor's own detectors
    gradebook [--out FILE]                every learner's latest autograde, as CSV

Course developers:
    verify [--phase P] [--break ID]       are the breaks reliable? (the kill matrix over seeds)
    outputs [--phase N] [--check]         the lab pages' output blocks, from real runs

Every user mistake ends in one line `error: ...` naming the problem and the fix, exit code 2.
An interrupt (Ctrl-C, SIGTERM, SIGHUP) never leaves a half-written file, and says what is on.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from . import autograde as grading_class
from . import classroom, guard, handout, learners
from . import grade as grading
from .catalog import CourseError, course_seeds, load_catalog, lookup, repo_root
from .switch import pick_blind, status, switch_off, switch_off_all, switch_on, tracked
from .verify import kill_matrix, margins, save, verify


def _states(root, cat, phase: int | None) -> tuple[dict[str, str], set[int], set[int]]:
    """Each listed break's state; the phases with a blind exercise (whose states are not shown, or the listing
    gives it away); and among them those whose blind break `just grade` has not yet seen fixed (whose titles
    are not shown either: each title names a cause, and a phase's few titles would make the hunt a multiple
    choice). Read together under the lock: a switch cannot land between the reads."""
    with guard.exclusive(root):
        blind = [t for t in tracked(root, cat) if t.exercise.blind]
        states = {b.id: status(b, root) for b in cat.values() if not phase or b.phase == phase}
    unfixed = {t.exercise.phase for t in blind
               if not (t.exercise.learner and learners.was_fixed(root, t.exercise.learner, t.exercise.token))}
    return states, {t.exercise.phase for t in blind}, unfixed


def cmd_list(root, args):
    cat = load_catalog(root)
    states, hidden, unfixed = _states(root, cat, args.phase)
    rows = [f"{'phase':<5}  {'id':<6}  {'state':<7}" + ("  title" if args.titles else "")]
    for b in cat.values():
        if b.id not in states:
            continue
        shown = "?" if b.phase in hidden else {"on": "ON", "off": "off", "edited": "edited"}[states[b.id]]
        title = "(hidden during your blind hunt)" if b.phase in unfixed else b.t("title", args.lang)
        rows.append(f"{b.phase:<5}  {b.id:<6}  {shown:<7}" + (f"  {title}" if args.titles else ""))
    print("\n".join(rows))
    if hidden:
        print("? = a blind break is among these; `just break status` says what it can")
    if not args.titles:
        print("each break's title names its bug: `just breaks --titles` shows them (a spoiler for a blind hunt)")
    elif unfixed:
        print(f"phase {', '.join(map(str, sorted(unfixed)))}: titles hidden until `just grade` sees the blind break "
              "fixed (then they name it, for your notes' bug-id)")


def what_is_on(root, cat) -> list[str]:
    """One line per break that is on or edited; a blind exercise only by its phase."""
    with guard.exclusive(root):  # the states are read with the state file, or a switch lands between
        items = tracked(root, cat)
        states = {b.id: status(b, root) for b in cat.values()}
    blind = {t.brk.id: t for t in items if t.exercise.blind and t.brk}
    hidden = {t.exercise.phase for t in blind.values()}
    lines = []
    for t in blind.values():
        word = "its line is back in its original form" if t.line == "off" else \
            "on (your edits do not change this line: `just grade` says when its detectors see it fixed)"
        lines.append(f"blind  a break of phase {t.exercise.phase} ({t.exercise.token}): {word}; `just hint` "
                     "gives its hints")
    for b in cat.values():
        if b.id in blind or b.phase in hidden:
            continue
        st = states[b.id]
        if st == "on":
            lines.append(f"ON     {b.id}  {b.t('title')}  ({b.target})")
        elif st == "edited":
            lines.append(f"edited {b.id}: its line in {b.target} was changed by hand (neither original nor broken)")
    return lines


def cmd_break(root, args):
    cat = load_catalog(root)
    learner = learners.active(root)
    if args.action == "status":
        with guard.exclusive(root):
            leftovers = guard.clean_temp_files(root)
        for p in leftovers:
            print(f"removed {p}: a temp file an interrupted write left behind (the file it was for is intact)")
        lines = what_is_on(root, cat)
        print("\n".join(lines) if lines else "no break is on")
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
        ex = switch_on(b, root, learner, blind=True, catalog=cat)
        print(f"a break of phase {phase} is on (blind, exercise {ex.token}). Find it from what the model "
              f"prints: `just hunt {phase}` says what to run, what to compare and what to watch; "
              "`just hint` helps. (Self-study: `git diff` and "
              "`git status` would show it; for a real blind hunt use a handout.)")
        return
    if args.action == "off" and args.all:
        rep = switch_off_all(root, cat)
        for x in rep.switched_off:
            print(f"switched off {x}")
        for x in rep.closed:
            print(f"closed {x}: its line was no longer broken")
        for x in rep.edited:
            print(f"left alone {x}")
        if not (rep.switched_off or rep.closed or rep.edited):
            print("no break was on")
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
    cat = load_catalog(root)
    with guard.exclusive(root):
        items = tracked(root, cat)
        blind = [t for t in items if t.exercise.blind and t.brk]
        if args.id and any(t.exercise.token == args.id for t in blind):
            t = next(t for t in blind if t.exercise.token == args.id)
            b, token, label = t.brk, t.exercise.token, f"the blind break ({t.exercise.token})"
        elif args.id:
            b = lookup(cat, args.id)
            token, label = b.id, b.id
        elif len(blind) == 1:
            b, token, label = blind[0].brk, blind[0].exercise.token, f"the blind break ({blind[0].exercise.token})"
        else:
            raise CourseError("give a break id (`just hint 36-01`); without one, `just hint` serves the blind break, "
                              f"and {len(blind)} blind breaks are given")
        name = learners.active(root)
        if args.rung:
            if not 1 <= args.rung <= 3:
                raise CourseError("--rung is 1, 2 or 3")
            rung, new = args.rung, True
        elif name:
            rung, new = learners.next_hint(root, name, token)
        else:
            raise CourseError("no active learner, so the ladder cannot remember your rung: `just new-learner <name>` "
                              "first, or ask for a rung with --rung 1")
    print(f"hint {rung}/3 for {label}: {b.hint(rung, args.lang)}")
    if not new:
        print("(that was the last rung)")


def cmd_grade(root, args):
    cat = load_catalog(root)
    learners.check_name(args.name)
    g = grading.grade(root, cat, args.name, run_tests=not args.no_tests)
    print(grading.table(g))
    if args.no_tests:
        print("(--no-tests: the detectors did not run, so nothing was written)")
        return 1
    print(f"wrote {grading.write_report(root, g).relative_to(root)}")
    return 0 if g.verdicts and all(v.passed for v in g.verdicts) else 1


def cmd_handout(root, args):
    cat = load_catalog(root)
    if bool(args.phase) == bool(args.breaks):
        raise CourseError("say what to hand out: --phase N (a break drawn from that phase per handout) or "
                          "--breaks 36-01,36-03")
    if bool(args.learners) == args.whole_class:
        raise CourseError("say who it is for: --learners ana,ben (one handout each) or --class (one for all)")
    ids = [lookup(cat, i.strip()).id for i in args.breaks.split(",")] if args.breaks else None
    names = [learners.check_name(n.strip()) for n in args.learners.split(",")] if args.learners else [None]
    cls = classroom.folder(root, args.classroom)
    rng = random.Random(args.seed) if args.seed is not None else random.SystemRandom()
    with guard.exclusive(cls):
        roster = classroom.read_roster(cls)
        again = [n for n in names if n in roster["learners"]] + (["the class"] if names == [None] and roster.get(
            "class") else [])
        if again and not args.replace:
            raise CourseError(f"{', '.join(again)} already has a handout (`{cls.name}/roster.json`); --replace gives a "
                              "new one (the old one stays recorded, its results kept)")
        for name in names:
            h = handout.build(root, cat, handout.pick(cat, args.phase, ids, args.count, rng), args.blind, name, cls,
                              rng)
            classroom.add_handout(roster, h)
            classroom.write_roster(cls, roster)
            what = ", ".join(h.codes) if args.blind else ", ".join(f"{c}" for c in h.codes)
            print(f"{name or 'class'}: {cls.name}/{h.bundle} ({'blind, ' if h.blind else ''}exercises {what}; "
                  f"handout {h.id})")
    print(f"send each learner their .bundle (`git clone NAME.bundle`); collect what `just submit` writes, then "
          f"`just autograde {cls.name}/submissions/*`")


def cmd_autograde(root, args):
    cat = load_catalog(root)
    cls = classroom.folder(root, args.classroom)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    if seeds is not None and len(seeds) < 3:
        raise CourseError("--seeds: grade on at least 3 seeds, e.g. --seeds 0,1,2")
    results = grading_class.autograde(root, cat, cls, [Path(p) for p in args.submissions], args.learner, seeds,
                                      args.jobs, args.timeout)
    ok = [r for r in results if "error" not in r]
    print(f"graded {len(ok)} of {len(results)} submission(s); results in {cls.name}/results/, "
          "`just gradebook` collects them")
    return 0 if len(ok) == len(results) else 2


def cmd_gradebook(root, args):
    cls = classroom.folder(root, args.classroom)
    text = classroom.gradebook(cls, args.columns.split(",") if args.columns else None)
    out = Path(args.out).resolve() if args.out else cls / "gradebook.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text, end="")
    print(f"wrote {out.relative_to(root) if out.is_relative_to(root) else out}")


def cmd_verify(root, args):
    cat = load_catalog(root)
    if args.break_id:
        lookup(cat, args.break_id)
    breaks = [b for b in cat.values() if (not args.phase or b.phase == args.phase)
              and (not args.break_id or b.id == args.break_id)]
    if not breaks:
        raise CourseError("no break matches; `just breaks` lists them")
    seeds = parse_seeds(args.seeds) if args.seeds else course_seeds(root)["verify"]
    report = verify(root, cat, breaks, seeds, workers=args.workers)
    print(kill_matrix(report, breaks))
    print(margins(report, breaks))
    save(report, root / "runs" / "verify" / "verify.json")
    for f in report.failures:
        print("FAIL " + f)
    print(f"{'OK' if report.ok else 'FAILED'}: {len(breaks)} breaks x {len(seeds)} seeds in {report.seconds:.0f} s")
    return 0 if report.ok else 1


def parse_seeds(text: str) -> list[int]:
    """--seeds: a list (3,17,42; one seed: 5,), or a count N for seeds 0..N-1."""
    usage = f"--seeds {text!r}: give a count (10) or a list of seeds (3,17,42; one seed with a comma: 0,)"
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise CourseError(usage) from None
    count = len(seeds) == 1 and "," not in text
    if not seeds or min(seeds) < 0 or (count and seeds[0] < 1):
        raise CourseError(usage)
    return list(range(seeds[0])) if count else seeds


def cmd_outputs(root, args):
    from . import outputs

    if args.check:
        problems = outputs.check(root, args.phase, fresh=not args.pages_only)
        for p in problems:
            print("STALE " + p)
        match = "every page matches its saved output" if args.pages_only else "all pages match a fresh run"
        print("outputs: " + (match if not problems else f"{len(problems)} problem(s)"))
        return 1 if problems else 0
    changed = outputs.generate(root, args.phase, args.only)
    print(f"updated {len(changed)} page(s)" + "".join(f"\n  {p.relative_to(root)}" for p in changed))


def cmd_hunt(root: Path, args) -> None:
    """The phase's blind-hunt page (what to run and watch; it names no break), as the site shows it."""
    from .site_phases import hunt_page, phases

    found = [ph for ph in phases(root, load_catalog(root)) if ph.number == args.phase]
    if not found:
        raise CourseError(f"no phase {args.phase}; `just breaks` lists the phases and their breaks")
    print(hunt_page(root, found[0], args.lang, terminal=True))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minimoe.course", description="The minimoe course engine.")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("list", help="list the breaks")
    s.add_argument("--phase", type=int)
    s.add_argument("--lang", choices=("en", "es"), default="en")
    s.add_argument("--titles", action="store_true",
                   help="show each break's title, which names its bug (a spoiler for a blind hunt)")
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
    s.add_argument("--rung", type=int, help="show this rung (1-3)")
    s = sub.add_parser("hunt", help="a phase's blind-hunt page: what to run and watch (it names no break)")
    s.add_argument("phase", type=int)
    s.add_argument("--lang", choices=("en", "es"), default="en")
    s = sub.add_parser("grade", help="self-study: grade a learner of this checkout")
    s.add_argument("name")
    s.add_argument("--no-tests", action="store_true", help="skip the detectors (notes and files only; writes nothing)")
    s = sub.add_parser("handout", help="classroom: build learner repositories with breaks in them")
    s.add_argument("--phase", type=int, help="draw the break(s) of each handout from this phase")
    s.add_argument("--breaks", help="exactly these breaks, comma-separated (e.g. 36-01,36-03)")
    s.add_argument("--count", type=int, default=1, help="with --phase: breaks per handout")
    s.add_argument("--blind", action="store_true", help="neutral exercise codes; nothing names the break")
    s.add_argument("--learners", help="one handout per learner, comma-separated names")
    s.add_argument("--class", dest="whole_class", action="store_true", help="one handout for the whole class")
    s.add_argument("--seed", type=int, help="make the draws reproducible")
    s.add_argument("--replace", action="store_true", help="give a learner who has a handout a new one")
    s.add_argument("--classroom", help="the classroom folder (default: classroom/)")
    s = sub.add_parser("autograde", help="classroom: grade submissions with the instructor's detectors")
    s.add_argument("submissions", nargs="+", help="folders, .bundle files or .tar.gz/.zip archives")
    s.add_argument("--learner", help="the learner of a single submission (default: its file or folder name)")
    s.add_argument("--jobs", type=int, default=2, help="submissions graded at once")
    s.add_argument("--seeds", help="grading seeds, comma-separated (default: labs/seeds.yaml's grade seeds)")
    s.add_argument("--timeout", type=float, default=600, help="seconds allowed per submission")
    s.add_argument("--classroom", help="the classroom folder (default: classroom/)")
    s = sub.add_parser("gradebook", help="classroom: every learner's latest autograde as CSV")
    s.add_argument("--out")
    s.add_argument("--columns", help="only these columns, comma-separated, in this order")
    s.add_argument("--classroom", help="the classroom folder (default: classroom/)")
    s = sub.add_parser("verify", help="check every break is red when on and green when off, over seeds")
    s.add_argument("--seeds", help="these seeds (3,17,42), or 0..N-1 for a count N, instead of labs/seeds.yaml's "
                   "verify seeds")
    s.add_argument("--phase", type=int)
    s.add_argument("--break", dest="break_id")
    s.add_argument("--workers", type=int, default=2)
    s = sub.add_parser("outputs", help="regenerate (or --check) the lab pages' output blocks from real runs")
    s.add_argument("--phase", type=int)
    s.add_argument("--only", help="one output by name")
    s.add_argument("--check", action="store_true", help="re-run and compare instead of writing")
    s.add_argument("--pages-only", action="store_true", help="with --check: compare pages to saved outputs only")
    return p


COMMANDS = {"list": cmd_list, "break": cmd_break, "new-learner": cmd_new_learner, "learner": cmd_learner,
            "hint": cmd_hint, "hunt": cmd_hunt, "grade": cmd_grade, "handout": cmd_handout, "autograde": cmd_autograde,
            "gradebook": cmd_gradebook, "verify": cmd_verify, "outputs": cmd_outputs}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    guard.install_signal_handlers()
    root = None
    try:
        root = repo_root()
        return COMMANDS[args.cmd](root, args) or 0
    except CourseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"interrupted ({e or 'SIGINT'}): no file was left half-written", file=sys.stderr)
        if root is not None and args.cmd in ("break", "handout"):
            try:
                on = what_is_on(root, load_catalog(root))
                print("now: " + ("; ".join(on) if on else "no break is on"), file=sys.stderr)
            except (CourseError, KeyboardInterrupt):
                pass
        return 130


if __name__ == "__main__":
    sys.exit(main())
