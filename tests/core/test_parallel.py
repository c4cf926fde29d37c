"""Expert parallelism (--expert-parallel N, `just moe-train-ep N`): bad launches are refused in one line;
on 1, 2 and 4 local ranks the lab model trains as it does in one process; the torchrun launch reports
its traffic from rank 0 only; a job whose rank a signal kills runs once more. The ranks are started here
(gloo on this machine, meeting through a file store, with a time limit)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from minimoe import launch, parallel
from minimoe.config import Config, ConfigError
from minimoe.experiments import lab_config
from minimoe.experiments.expert_parallel import compare, one_process, run_ranks
from minimoe.train import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("changes,words", [
    ({"moe": {"experts": 6}, "train": {"expert_parallel": 4}}, "--expert-parallel 4: must divide --experts 6"),
    ({"moe": {"experts": 8}, "train": {"expert_parallel": 4, "batch": 6}}, "must divide --batch 6"),
    ({"moe": {"experts": 8, "gating": "soft"}, "train": {"expert_parallel": 2}}, "soft gating"),
    ({"moe": {"experts": 8, "capacity_factor": 1.0}, "train": {"expert_parallel": 2}}, "dropless"),
    ({"model": {"moe_start_layer": 2}, "train": {"expert_parallel": 2}}, "no MoE layer"),
    ({"train": {"expert_parallel": 0}}, "must be at least 1"),
])
def test_a_sharding_that_cannot_work_is_refused(changes, words):
    with pytest.raises(ConfigError, match=words):
        Config().replace(**changes)


def test_without_torchrun_the_run_is_refused_in_one_line(monkeypatch, capsys):
    for var in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert main(["--experts", "8", "--expert-parallel", "2", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --expert-parallel 2: start one process per rank with torchrun")
    assert err.count("\n") == 1


def test_a_world_size_other_than_n_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert main(["--experts", "8", "--expert-parallel", "2", "--out", ""]) == 2
    assert "torchrun started 4 rank(s); give it --nproc-per-node 2" in capsys.readouterr().err


@pytest.mark.parametrize("argv,words", [
    ([], "give the number of ranks first"),
    (["two"], "give the number of ranks first"),
    (["3", "--experts", "8"], "--expert-parallel 3: must divide --experts 8"),
    (["2", "--experts", "8", "--capacity-factor", "-1"], "--capacity-factor -1.0: must be >= 0"),
])
def test_moe_train_ep_checks_its_flags_before_starting_ranks(argv, words, capsys):
    assert launch.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and err.count("\n") == 1


def test_the_launch_becomes_torchrun_with_one_thread_per_rank():
    argv = launch.torchrun_argv(2, ["--steps", "5"])
    assert argv[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "minimoe.train",
                        "--threads", "1", "--expert-parallel", "2", "--steps", "5"]


@pytest.mark.slow
def test_one_two_and_four_ranks_train_the_one_process_model():
    cfg = lab_config(42).replace(train={"eval_tokens": 256})
    ref = one_process(cfg, 0, 20)
    for world in (1, 2, 4):
        c = compare(ref, [r[0] for r in run_ranks(cfg, world, [0], 20, timeout=300)])
        assert c["d_main"] < 1e-5 and c["d_aux"] < 1e-5 and c["d_val"] < 1e-5, (world, c)
        assert c["counts_off"] == 0 and c["router_spread"] == 0, (world, c)


@pytest.mark.slow
def test_moe_train_ep_under_torchrun_reports_from_rank_0(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-m", "minimoe.launch", "2", "--experts", "8", "--top-k", "2",
                           "--steps", "4", "--log-every", "2", "--eval-tokens", "256", "--no-baseline",
                           "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("step=4 ") == 1 and proc.stdout.count("val_loss=") == 1  # rank 0 speaks
    assert "expert parallel: 2 ranks, 4 experts and 8 sequences each" in proc.stdout
    blob = json.loads((out / "telemetry.json").read_text())
    rows = blob["parallel"]
    assert [r["rank"] for r in rows] == [0, 1] and all(r["sent"] > 0 and r["bytes"] > 0 for r in rows)
    assert rows[0]["sent"] == rows[1]["received"] and rows[1]["sent"] == rows[0]["received"]


def _abort_once(rank: int, world: int, marker: str, out: str) -> None:
    """Rank 1 dies by SIGABRT on the job's first run (as gloo has been seen to, rarely); both write on the next."""
    if rank == 1 and not os.path.exists(marker):
        open(marker, "w").close()
        os.abort()
    dist.all_reduce(torch.ones(1))
    Path(out, f"rank{rank}").write_text("done")


def _raise(rank: int, world: int, marker: str) -> None:
    with open(marker, "a") as f:
        f.write(f"{rank}\n")
    raise ValueError("a bug in the job itself")


@pytest.mark.slow
def test_a_rank_killed_by_a_signal_reruns_the_job_once_but_an_exception_never(tmp_path, capsys):
    parallel.spawn_local(_abort_once, 2, (str(tmp_path / "marker"), str(tmp_path)), timeout=60)
    assert sorted(p.name for p in tmp_path.glob("rank*")) == ["rank0", "rank1"]
    assert "killed by SIGABRT; running the job again (attempt 2 of 2)" in capsys.readouterr().err
    with pytest.raises(torch.multiprocessing.ProcessRaisedException, match="a bug in the job itself"):
        parallel.spawn_local(_raise, 2, (str(tmp_path / "raised"),), timeout=60)
    assert len((tmp_path / "raised").read_text().split()) <= 2  # one run: never retried
