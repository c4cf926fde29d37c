"""Does this machine do the course's float arithmetic bit for bit like the one that made the pages?

A fresh run reproduces a saved lab output only on a machine whose float arithmetic gives the same
bits: the same torch build choosing the same kernels (AVX2 or AVX-512, MKL's code path, the
thread split of a reduction). On any other machine the last-bit differences of the first step
grow over a few hundred steps of training into different expert counts and different dead
experts (measured: a run pinned to AVX2 on an AVX-512 machine changes phase 37's per-step
expert counts by up to 3x and its dead-expert counts by a few percent), so comparing number
for number there says nothing about whether a page is stale.

`fingerprint()` trains a small MoE written with plain torch ops (not minimoe's code, so that a
change to the course's code is still caught as a stale page, never excused as another machine) in
the course's shapes for three steps and hashes the weights: about a second, and it differs
wherever those bits would. `just docs-outputs` records it beside each
phase's outputs (outputs/numerics.json); `--check` and the slow tests compare a fresh run exactly where
the fingerprints agree, and elsewhere number by number within each output's tolerance, then run the
phase's claim tests on the fresh outputs (outputs_compare.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from pathlib import Path

FILE = "numerics.json"  # in labs/<phase>/outputs/

VERSION = 1  # change it whenever fingerprint() changes: every phase's record must then be regenerated

# The shapes of the course's runs: (width, experts, top-k, expert hidden), with the thread counts
# the lab commands (2) and the detectors (1) use.
SHAPES = ((48, 4, 1, 16), (48, 4, 2, 16), (32, 256, 7, 8))


def _steps(D: int, E: int, K: int, F: int, threads: int, h) -> None:
    """Three AdamW steps of a small MoE language model written with plain torch ops only (so a change
    to minimoe's own code never changes the fingerprint); every weight's bits go into h."""
    import torch
    import torch.nn.functional as nnf

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    V, B, S = 40, 16, 64
    w = {"emb": torch.randn(V, D, generator=g), "qkv": torch.randn(D, 3 * D, generator=g) / D**0.5,
         "router": torch.randn(D, E, generator=g) * 0.01, "gate": torch.randn(E, D, F, generator=g) / D**0.5,
         "up": torch.randn(E, D, F, generator=g) / D**0.5, "down": torch.randn(E, F, D, generator=g) / F**0.5}
    for t in w.values():
        t.requires_grad_(True)
    opt = torch.optim.AdamW(w.values(), lr=3e-3)
    ids = torch.randint(0, V, (B, S + 1), generator=g)
    for _ in range(3):
        x = nnf.rms_norm(nnf.embedding(ids[:, :-1], w["emb"]), (D,))
        q, k, v = (x @ w["qkv"]).view(B, S, 3, 2, D // 2).permute(2, 0, 3, 1, 4)
        x = x + nnf.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, S, D)
        x_TD = nnf.rms_norm(x, (D,)).reshape(B * S, D)
        probs = (x_TD @ w["router"]).softmax(-1)
        p_TK, id_TK = probs.topk(K, dim=-1)
        order = id_TK.reshape(-1).argsort(stable=True)
        count = torch.bincount(id_TK.reshape(-1), minlength=E)
        C = int(count.max())
        rank = torch.arange(B * S * K) - (count.cumsum(0) - count)[id_TK.reshape(-1)[order]]
        row = id_TK.reshape(-1)[order] * C + rank
        x_R = torch.zeros(E * C, D).index_copy(0, row, x_TD.index_select(0, order // K)).view(E, C, D)
        y_R = torch.bmm(nnf.silu(torch.bmm(x_R, w["gate"])) * torch.bmm(x_R, w["up"]), w["down"]).view(E * C, D)
        y_TD = (y_R.index_select(0, row.new_empty(B * S * K).index_copy_(0, order, row)).view(B * S, K, D)
                * p_TK.unsqueeze(-1)).sum(1)
        logits = (x_TD + y_TD) @ w["emb"].T
        loss = nnf.cross_entropy(logits, ids[:, 1:].reshape(-1)) + E * (probs.mean(0) * count / (B * S * K)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for t in w.values():
        h.update(t.detach().numpy().tobytes())


def fingerprint() -> dict:
    """{"hash": ..., "cpu": ..., "torch": ...}: what this machine's float arithmetic makes of _steps (seconds
    the first time; a process's arithmetic does not change, so later calls reuse it)."""
    return dict(_fingerprint())


@functools.cache
def _fingerprint() -> tuple:
    import torch

    threads = torch.get_num_threads()
    h = hashlib.sha256(f"minimoe numerics v{VERSION}".encode())
    try:
        for shape in SHAPES:
            for n in (1, 2):
                _steps(*shape, threads=n, h=h)
    finally:
        torch.set_num_threads(threads)
    return (("hash", h.hexdigest()[:16]), ("cpu", f"{platform.machine()} {torch.backends.cpu.get_cpu_capability()}"),
            ("torch", torch.__version__))


def record(phase_dir: Path, fp: dict) -> None:
    out = phase_dir / "outputs"
    out.mkdir(parents=True, exist_ok=True)
    (out / FILE).write_text(json.dumps(fp, indent=1) + "\n", encoding="utf-8")


def recorded(phase_dir: Path) -> dict | None:
    f = phase_dir / "outputs" / FILE
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def phase_number(phase_dir: Path) -> str:
    """36 for labs/phase-36-*; the folder's name for docs/ (the site's other pages)."""
    parts = phase_dir.name.split("-")
    return parts[1] if len(parts) > 1 else phase_dir.name


def mismatch(phase_dir: Path, made: dict, here: dict) -> str | None:
    """Why a fresh run here cannot reproduce the outputs made on `made` bit for bit, or None if it can."""
    if made.get("hash") == here["hash"]:
        return None
    return (f"{phase_dir.name}: its outputs were made on a machine whose float arithmetic differs from this one "
            f"(numerics fingerprint {made.get('hash')}, {made.get('cpu')}, torch {made.get('torch')}; here "
            f"{here['hash']}, {here['cpu']}, torch {here['torch']}). Training turns last-bit differences into "
            "different counts, so a fresh run here reproduces its numbers only within each output's tolerance. "
            f"To record this machine's numbers: `just docs-outputs --phase {phase_number(phase_dir)}`")
