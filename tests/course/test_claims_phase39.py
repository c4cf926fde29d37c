"""What the phase 39 pages say in words must hold in the saved outputs they show.

The outputs themselves are checked against fresh runs (`just docs-outputs --check`); these tests
check the sentences written around them.
"""

import re
from pathlib import Path

from minimoe.course.outputs_read import parse_table, read_output

ROOT = Path(__file__).resolve().parents[2]


def out(name):
    return read_output(ROOT, name)


def verdicts(name) -> dict:
    """label -> (ratio, unique, verdict) from the table of `just compress`."""
    rows = {}
    for line in out(name).splitlines():
        m = re.match(r"^(.+?)\s+(\d+\.\d+)\s+(\d+\.\d+)x\s+(\d+)\s+(STRICT|LENIENT|FAILS LENIENT|CATASTROPHIC)$", line)
        if m:
            rows[m.group(1).strip()] = (float(m.group(3)), int(m.group(4)), m.group(5))
    return rows


def summary(name) -> dict:
    """(init, method) -> the summary line of `just experiment compression`."""
    return {tuple(ln.split()[:2]): ln for ln in out(name).splitlines()
            if re.match(r"^(same|independent)\s+(average|ternary|prune|control|averaging)\s", ln)}


def counts(line: str, after: str = "") -> dict:
    """Verdict counts like 'F8 C2' in a summary line (after the given text)."""
    part = line.split(after)[1] if after else line.split(";")[0]
    return {c: int(n) for c, n in re.findall(r"\b([SLFC])(\d+)\b", part)}


def spread_after(name, label) -> list[float]:
    line = next(ln for ln in out(name).splitlines() if ln.startswith(f"{label}: tokens"))
    return [float(x) for x in re.findall(r"L\d (\d\.\d+)", line.split("spread after:")[1])]


def test_lab00_step2_verdicts():
    v = verdicts("39-00-compress")
    assert v["average"][2] == "FAILS LENIENT" and v["ternary"][2] == "LENIENT" and v["prune 50%"][2] == "STRICT"
    assert spread_after("39-00-compress", "average") == [0.0, 0.0]
    text = out("39-00-compress")
    before = [float(x) for x in re.findall(r"spread=(\d\.\d+)", text)]
    for label in ("ternary", "prune 50%"):  # "further apart than before"
        assert all(a > b for a, b in zip(spread_after("39-00-compress", label), before))
    assert all(float(x) > 0.8 for x in re.findall(r"avg_norm=(\d\.\d+)", text))


def test_lab00_recovery_stays_behind_its_control():
    v = verdicts("39-00-recover")
    control = v["original +200 steps"][0]
    assert control < 1.0
    for label in ("average", "ternary", "prune 50%"):
        assert control < v[f"{label} +200 steps"][0] < v[label][0]


def test_lab00_independent_init_shrinks_the_average_and_costs_more():
    text = out("39-00-independent")
    assert all(abs(float(x) - 0.25) < 0.03 for x in re.findall(r"avg_norm=(\d\.\d+)", text))
    assert verdicts("39-00-independent")["average"][0] > verdicts("39-00-compress")["average"][0]


def test_lab00_ten_seed_summary():
    s = summary("39-00-seeds")
    assert "in 0 of 10 seeds, after recovery in 10 of 10" in s[("same", "averaging")]
    assert "in 0 of 10 seeds, after recovery in 0 of 10" in s[("independent", "averaging")]
    for init in ("same", "independent"):
        assert counts(s[(init, "average")]).get("S", 0) + counts(s[(init, "average")]).get("L", 0) == 0
        assert counts(s[(init, "prune")]) == {"S": 10}
        assert counts(s[(init, "ternary")], "after recovery") == {"L": 10}
        ratios = [float(x) for x in re.findall(r"(\d+\.\d+)-(\d+\.\d+)x", s[(init, "average")])[0]]
        assert max(ratios) < 10  # never more than 10x
    assert counts(s[("same", "average")]).get("C", 0) == 1  # README: "on 1 of the 10 seeds"
    assert counts(s[("same", "ternary")]) == {"L": 7, "F": 3}  # README: "failing it on 3 of 10 seeds"


def test_readme_batch32_recovery_rarely_gets_under_lenient():
    line = summary("39-design-batch32")[("same", "averaging")]
    assert int(re.search(r"after recovery in (\d+) of 10", line).group(1)) == 2  # "on only two seeds of ten"
    assert counts(summary("39-design-batch32")[("same", "ternary")]) == {"F": 10}


def test_39_01_turns_per_expert_methods_into_averaging():
    v = verdicts("39-01-compress")
    assert v["ternary"][2] == "FAILS LENIENT" and v["prune 50%"][2] == "FAILS LENIENT"
    assert v["prune 50%"][0] > 0.9 * v["average"][0]  # "about as much as averaging itself"
    for label in ("ternary", "prune 50%"):
        assert spread_after("39-01-compress", label) == [0.0, 0.0]


def test_readme_margins_separate_at_the_thresholds():
    off = {r["seed"]: r for r in parse_table(out("38-checks-pristine"), "seed")}
    on = {r["seed"]: r for r in parse_table(out("39-checks-01"), "seed")}
    assert max(r["prune_x"] for r in off.values()) < 3 < min(r["prune_x"] for r in on.values())
    assert min(r["prune_uniq"] for r in off.values()) >= 5
    assert min(r["spread"] for r in off.values()) > 0.5 > max(r["spread"] for r in on.values())
