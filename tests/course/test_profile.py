"""`just profile`: where the time of `just moe-train` goes. A tiny run's phases and step parts add up, the
timers leave the training untouched, the site shows a recorded profile and judges the demo's goal on it,
and the performance page's prose holds in the recorded profile. No timing is asserted."""

import json
from pathlib import Path

import pytest
import torch

from minimoe import train as train_mod
from minimoe.config import Config
from minimoe.course import site_bench
from minimoe.course.catalog import CourseError
from minimoe.model import MiniLM
from minimoe.perf import profile

PERFORMANCE = Path(__file__).resolve().parents[2] / "docs" / "performance"
TINY = ["--steps", "6", "--width", "16", "--heads", "2", "--context", "16", "--batch", "4", "--experts", "4",
        "--eval-tokens", "64", "--no-baseline", "--threads", "1"]


def test_a_steps_parts_add_up_to_the_step(tmp_path):
    p = profile.phases_run([*TINY, "--out", str(tmp_path / "run")])
    assert p["steps"] == 6
    parts = p["step_parts_ms"]
    assert list(parts) == list(profile.STEP_PARTS)
    assert all(ms >= 0 for ms in parts.values())  # the rest of the step is what the timed parts leave
    assert sum(parts.values()) == pytest.approx(p["step_ms"])
    forward = p["forward_parts_ms"]
    assert {"attention", "router", "experts (grouped matmuls)", "embeddings, final norm, head"} <= set(forward)
    assert sum(forward.values()) <= parts["forward"] * 1.0001  # each module's own time, never twice
    assert list(p["phases_s"]) == list(profile.PHASES) and p["phases_s"]["training steps"] > 0
    assert (tmp_path / "run" / "telemetry.json").is_file()  # the command's own outputs, written as usual


def test_the_timers_leave_the_training_as_it_was(tmp_path):
    """Same flags, same seed: the losses under the timers are the losses without them, bit for bit."""
    def losses(out):
        return [h["main"] for h in json.loads((out / "telemetry.json").read_text())["history"]]

    assert train_mod.main([*TINY, "--out", str(tmp_path / "plain")]) == 0
    profile.phases_run([*TINY, "--out", str(tmp_path / "timed")])
    assert losses(tmp_path / "timed") == losses(tmp_path / "plain")
    assert train_mod.Batches.__name__ == "Batches" and torch.Tensor.backward is torch.Tensor.backward
    assert train_mod.evaluate.__module__ == "minimoe.evaluate"  # the patches are gone after the run


def test_the_dense_baselines_steps_are_not_the_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIMOE_CACHE", str(tmp_path / "cache"))  # a cache miss: the baseline trains
    argv = [a for a in TINY if a != "--no-baseline"] + ["--out", str(tmp_path / "run")]
    p = profile.phases_run(argv)
    assert p["steps"] == 6 and p["phases_s"]["dense baseline"] > 0


def test_op_table_counts_the_steps_only():
    ops = {o["op"]: o for o in profile.op_table(TINY, steps=3, warmup=2)}
    assert ops["aten::embedding_dense_backward"]["calls_per_step"] == 2  # two embeddings a step, no warmup step
    assert sum(o["share"] for o in ops.values()) == pytest.approx(1.0)


def _data(walls, trains=None):
    trains = trains or [w - 2 for w in walls]
    return {"argv": ["--steps", "500", "--out", "runs/profile/run"],
            "wall": [{"wall_s": w, "train_s": t} for w, t in zip(walls, trains)],
            "phases": {"steps": 500, "phases_s": dict.fromkeys(profile.PHASES, 0.5), "step_ms": 9.0,
                       "step_parts_ms": dict.fromkeys(profile.STEP_PARTS, 9.0 / 7),
                       "forward_parts_ms": {"attention": 1.0}},
            "ops": [{"op": "aten::mm", "ms_per_step": 2.0, "share": 0.5, "calls_per_step": 93.0},
                    {"op": "aten::mul", "ms_per_step": 2.0, "share": 0.5, "calls_per_step": 1400.0}],
            "op_steps": 50, "meta": {"torch": "2.13.0", "threads": 2, "machine": "x86_64", "cpus": 2}}


@pytest.mark.parametrize("walls, verdict", [([4.8, 4.9, 6.5], "**met**"), ([4.9, 5.2, 5.3], "**NOT met**")])
def test_the_demo_goal_is_judged_on_the_median_of_the_fresh_runs(walls, verdict):
    page = site_bench.profile_markdown(_data(walls), "en")
    assert page.startswith("Recorded from `just profile --steps 500`:")  # the profile's own --out left out
    assert verdict in page and "`just moe-train --steps 500`" in page
    assert "1493 calls a step" in page and "| `aten::mm` | 2.000 | 50.0% | 93.0 |" in page
    assert ("**cumplido**" if verdict == "**met**" else "**NO cumplido**") in site_bench.profile_markdown(
        _data(walls), "es")


def test_a_profile_is_recorded_and_rendered_at_its_marker(tmp_path):
    page = "<!-- demo-profile -->\n"
    (tmp_path / site_bench.BENCH_DIR).mkdir(parents=True)
    assert "just profile --steps 500" in site_bench.fill_bench(page, tmp_path, "en")  # none recorded yet
    with pytest.raises(CourseError, match="run `just profile --steps 500` first"):
        site_bench.record_profile(tmp_path, echo=lambda *a: None)
    (tmp_path / "runs/profile").mkdir(parents=True)
    (tmp_path / "runs/profile/profile.json").write_text('{"argv": []}')
    with pytest.raises(CourseError, match="not in the format"):
        site_bench.record_profile(tmp_path, echo=lambda *a: None)
    (tmp_path / "runs/profile/profile.json").write_text(json.dumps(_data([6.0, 6.1, 6.2])))
    site_bench.record_profile(tmp_path, echo=lambda *a: None)
    assert "**NOT met**" in site_bench.fill_bench(page, tmp_path, "en")


def test_a_bad_flag_stops_before_any_run(capsys):
    with pytest.raises(SystemExit):
        profile.main(["--runs", "-1"])
    assert "--runs" in capsys.readouterr().err


def test_performance_page_demo_claims_hold_in_the_recorded_profile():
    """docs/performance says a step is well over a thousand torch operations, that the backward pass is
    usually the largest part, and that AdamW runs its arithmetic parameter by parameter."""
    data = json.loads((PERFORMANCE / "profile.json").read_text())
    assert data["argv"][:2] == ["--steps", "500"] and len(data["wall"]) >= 3
    ops = {o["op"]: o["calls_per_step"] for o in data["ops"]}
    assert sum(ops.values()) > 1000
    parts = data["phases"]["step_parts_ms"]
    assert max(parts, key=parts.get) == "backward"
    n_params = len(list(MiniLM(Config().replace(model={"vocab_size": 50})).parameters()))  # the default model's
    assert ops["aten::sqrt"] == n_params and ops["aten::lerp_"] == n_params  # one call per parameter tensor
    for page in ("index.md", "index.es.md"):
        assert "<!-- demo-profile -->" in (PERFORMANCE / page).read_text()


def test_the_spanish_page_names_every_phase_and_part():
    names = site_bench.T["es"]["names"]
    parts = (*profile.PHASES, *profile.STEP_PARTS, *profile.FORWARD_PARTS.values(), "shared experts")
    assert [p for p in parts if p not in names] == []
    page = site_bench.profile_markdown(_data([6.0, 6.1, 6.2]), "es")
    assert "| pasos de entrenamiento | 0.500 |" in page and "atención | 1.000 |" in page
