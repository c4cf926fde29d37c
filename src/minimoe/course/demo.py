"""Classroom mode end to end, in a scratch copy of the course (`just classroom-demo`).

The instructor hands out break 36-03 to three learners; ana fixes it and writes her notes; ben
leaves the bug, loosens the detector in his copy and adds a root conftest.py that marks every test
as passed; cy submits the handout untouched. Each step runs the real command and prints what it
prints, so an instructor sees the whole round (and the instructor guide shows this very output).
Nothing in the checkout is touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .catalog import load_catalog, repo_root
from .notes import notes_path
from .switch import scratch_copy

BREAK = "36-03"
NOTES = """```yaml
- bug-id: "36-03"
  concept: "a token's top-k combine weights are a distribution over its own K experts"
  symptom: "with --top-k 2 the health table showed w_sum 0.000 instead of 1.000, and the loss was worse"
  hidden_cause: "the weights were divided by their sum over the tokens of the batch, not over each token's K"
  hint_1: "read the w_sum column of the health table at top-2"
  hint_2: "what should one token's combine weights add up to"
  hint_3: "check which dimension the renormalisation in the router sums over"
  fix_diff: "weights_TK.sum(dim=-1, keepdim=True) instead of dim=0"
```
"""
FORCE_PASS = ("import pytest\n\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
              "    outcome = yield\n    outcome.get_result().outcome = 'passed'\n")


def run(cwd: Path, argv: list[str], shown: str, env: dict) -> None:
    print(f"$ {shown}")
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    text = (out.stdout + out.stderr).rstrip()
    if text:
        print(text)
    if out.returncode not in (0, 1):
        raise SystemExit(f"`{shown}` failed ({out.returncode})")


def main(root: Path) -> int:
    catalog = load_catalog(root)
    b = catalog[BREAK]
    with tempfile.TemporaryDirectory(prefix="minimoe-classroom-") as tmp:
        course = Path(tmp) / "course"
        course.mkdir()
        scratch_copy(root, course)
        env = {**os.environ, "PYTHONPATH": str(course / "src")}
        course_cmd = [sys.executable, "-m", "minimoe.course"]
        print("# The instructor hands out one break to three learners (one repository each).")
        run(course, [*course_cmd, "handout", "--breaks", BREAK, "--learners", "ana,ben,cy", "--seed", "1"],
            f"just handout --breaks {BREAK} --learners ana,ben,cy --seed 1", env)
        subs = course / "classroom" / "submissions"
        subs.mkdir()
        work = Path(tmp) / "learners"
        for who in ("ana", "ben", "cy"):
            bundle = next((course / "classroom" / "handouts").glob(f"*/{who}.bundle"))
            repo = work / who
            subprocess.run(["git", "clone", "-q", str(bundle), str(repo)], check=True)
            target = repo / b.target
            if who == "ana":
                target.write_text(target.read_text().replace(b.new, b.old))
                notes_path(repo, who, b.phase).write_text(NOTES)
            if who == "ben":
                (repo / "conftest.py").write_text(FORCE_PASS)
                test = repo / b.detectors[0].split("::")[0]
                test.write_text(test.read_text().replace("< 1e-5", "< 1e9"))
                notes_path(repo, who, b.phase).write_text(NOTES)  # copied from a friend
            learner_env = {**os.environ, "PYTHONPATH": str(repo / "src")}
            subprocess.run([sys.executable, "-m", "exercise", "submit", "--out", str(subs / f"{who}.bundle")],
                           cwd=repo, env=learner_env, check=True, capture_output=True)
        print("# ana fixed the line and wrote her notes; ben kept the bug, loosened the detector in his copy and")
        print("# added a conftest.py that marks every test passed; cy sent the handout untouched.")
        print("# Each ran `just submit`.")
        bundles = [str(subs / f"{w}.bundle") for w in ("ana", "ben", "cy")]
        run(course, [*course_cmd, "autograde", "--jobs", "2", *bundles],
            "just autograde classroom/submissions/ana.bundle classroom/submissions/ben.bundle "
            "classroom/submissions/cy.bundle", env)
        columns = "learner,exercise,result,reasons,reversal,detectors,notes,diff_lines"
        run(course, [*course_cmd, "gradebook", "--columns", columns], f"just gradebook --columns {columns}", env)
    return 0


if __name__ == "__main__":
    sys.exit(main(repo_root()))
