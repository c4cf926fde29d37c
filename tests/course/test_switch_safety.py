"""Switching under concurrency and signals (case 12): real processes started together, killed mid-write.

Each test drives `python -m minimoe.course` in separate processes on a scratch copy of the course,
the way two terminals or an impatient Ctrl-C would.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from minimoe.course import learners, switch

RACER = """
import sys, time
from pathlib import Path
from minimoe.course.cli import main
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.0005)
sys.exit(main(sys.argv[2:]))
"""

# Runs one command with the engine's writes instrumented: after write number N (state, source, state,
# progress...), the process sends itself a signal.
SIGNALLER = """
import os, signal, sys
from minimoe.course import switch
from minimoe.course.cli import main
n, sig = int(sys.argv[1]), getattr(signal, sys.argv[2])
real, calls = switch.atomic_write, []
def write(path, data):
    real(path, data)
    calls.append(path)
    if len(calls) == n:
        os.kill(os.getpid(), sig)
switch.atomic_write = write
sys.exit(main(sys.argv[3:]))
"""


def env(repo):
    return {**os.environ, "PYTHONPATH": str(repo / "src")}


def start_together(repo, commands):
    go = repo / ".go"
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(go), *c], cwd=repo, env=env(repo),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    time.sleep(0.5)  # every process imported and waiting
    go.touch()
    out = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    go.unlink()
    return out


def cli(repo, *argv):
    return subprocess.run([sys.executable, "-m", "minimoe.course", *argv], cwd=repo, env=env(repo),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.slow  # a race: many processes started together (just test-slow)
def test_two_switches_in_one_file_started_together_both_apply(repo, catalog):
    a, b = catalog["36-03"], catalog["36-04"]
    assert a.target == b.target
    for _ in range(5):
        results = start_together(repo, [["break", "on", a.id], ["break", "on", b.id]])
        assert [rc for rc, _, _ in results] == [0, 0], results
        assert switch.status(a, repo) == switch.status(b, repo) == "on"
        assert sorted(e.token for e in switch.read_state(repo)) == [a.id, b.id]
        assert cli(repo, "break", "off", "--all").returncode == 0
        assert switch.status(a, repo) == switch.status(b, repo) == "off"


def test_the_same_break_switched_twice_together_applies_once_and_refuses_once(repo, catalog):
    results = start_together(repo, [["break", "on", "36-03"], ["break", "on", "36-03"]])
    assert sorted(rc for rc, _, _ in results) == [0, 2]
    assert any("already on" in err for _, _, err in results)
    assert [e.token for e in switch.read_state(repo)] == ["36-03"]


@pytest.mark.slow  # a race: many processes started together (just test-slow)
def test_a_blind_switch_racing_readers_never_shows_its_break(repo, catalog):
    phase36 = [b for b in catalog.values() if b.phase == 36]
    for seed in range(4):
        readers = [["list", "--phase", "36"], ["break", "status"]] * 3
        results = start_together(repo, [["break", "blind", "36", "--seed", str(seed)], *readers])
        assert all(rc == 0 for rc, _, _ in results), results
        shown = "".join(out for _, out, _ in results[1:])
        assert not any(b.id in shown and " ON " in f" {shown} " for b in phase36), shown
        for line in shown.splitlines():
            assert not line.startswith("36 ") or line.split()[2] in ("off", "?"), line
        assert cli(repo, "break", "off", "--all").returncode == 0


@pytest.mark.parametrize("after_writes", [1, 2])
def test_sigkill_mid_switch_leaves_a_state_the_next_command_repairs(repo, catalog, after_writes):
    learners.new_learner(repo, "kim")
    proc = subprocess.run([sys.executable, "-c", SIGNALLER, str(after_writes), "SIGKILL", "break", "blind", "36",
                           "--seed", "2"], cwd=repo, env=env(repo), capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    on = [b for b in catalog.values() if switch.status(b, repo) == "on"]
    assert len(on) == after_writes - 1  # killed before the source write (1) or after it (2)
    status = cli(repo, "break", "status")
    listing = cli(repo, "list", "--phase", "36")
    if on:
        assert "blind  a break of phase 36" in status.stdout and on[0].id not in status.stdout
        assert all(row.split()[2] == "?" for row in listing.stdout.splitlines()[1:] if row.startswith("36"))
        assert [e.applying for e in switch.read_state(repo)] == [False]
    else:
        assert "no break is on" in status.stdout and switch.read_state(repo) == []


def test_leftover_temp_files_are_removed_and_reported(repo):
    stray = repo / "src/minimoe/.router.py.k3j2h1.tmp"
    stray.write_text("half a file")
    status = cli(repo, "break", "status")
    assert status.returncode == 0 and "removed src/minimoe/.router.py.k3j2h1.tmp" in status.stdout
    assert not stray.exists()


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_signal_mid_switch_is_held_and_the_message_says_what_is_on(repo, catalog, sig):
    learners.new_learner(repo, "lou")
    proc = subprocess.run([sys.executable, "-c", SIGNALLER, "1", sig, "break", "on", "36-03"], cwd=repo,
                          env=env(repo), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert f"interrupted ({sig})" in proc.stderr and "now: ON     36-03" in proc.stderr
    assert switch.status(catalog["36-03"], repo) == "on"
    assert "36-03" in json.loads((repo / "learners/lou/progress.json").read_text())["given"]
    assert not list((repo / "src/minimoe").glob(".*.tmp"))
