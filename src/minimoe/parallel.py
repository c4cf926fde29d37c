"""Expert parallelism on torch.distributed: the experts sharded over N ranks, everything else data-parallel.

GShard (Lepikhin et al., 2020), Switch (Fedus et al., 2021), DeepSpeed-MoE, Megatron-LM and torchtitan
all lay an MoE layer out this way once its experts outgrow one device. Every rank holds the whole model
but only E/N of each layer's experts (rank r: experts r*E/N to (r+1)*E/N - 1) and trains on its own B/N
sequences of each batch. One MoE layer on one rank, steps 2-4 of moe_block.py spread over the ranks:

    2. sort      the rank's T*K assignments by expert; rank j's experts are contiguous, so the rows
                 for each rank are contiguous too
    3. counts    all_to_all of the per-expert row counts: every rank learns how many rows it will
                 receive, from which rank, for which of its experts
    4. dispatch  all_to_all_single of the rows themselves, uneven splits; the autograd version, so
                 the backward pass sends the gradients back the same way
    5. experts   the received rows arrive by source rank, then by expert: regroup them by expert,
                 run the local experts (one grouped matmul per weight), put them back in arrival order
    6. return    all_to_all_single of the outputs, the splits reversed
    7. combine   each token's weighted sum, as in moe_forward

After the backward pass the gradients of the replicated parameters (all but the routed experts) are
summed over the ranks; an expert's gradient needs no reduction: every rank's tokens reached it through
the all-to-all. Each rank's loss is its share of the whole batch's (`combine_losses`), so the sums are
the one-process gradients, and the aux loss and the telemetry count every rank's tokens.

The process group has no backend named: torch gives CPU tensors gloo and CUDA tensors NCCL. minimoe
trains on CPUs, so here it is gloo on 127.0.0.1, started by `torchrun` (or `spawn_local` in tests).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.distributed._functional_collectives import all_to_all_single_autograd

from .config import Config, ConfigError
from .experts import Experts
from .loss import LossParts, router_z_loss
from .model import MiniLM
from .router import Routing

EXPERT_WEIGHTS = ("w_gate_EDF", "w_up_EDF", "w_down_EFD")


def replicated(name: str) -> bool:
    """Does every rank hold the same copy of this parameter? All do but the routed experts."""
    return ".experts." not in name


@dataclass
class Traffic:
    """What one rank's all-to-alls moved (forward and backward), and the time they took."""

    sent: int = 0  # rows (token copies) this rank dispatched to other ranks' experts
    received: int = 0  # rows other ranks dispatched to this rank's experts
    bytes: int = 0  # bytes this rank sent to other ranks: rows out and back, forward and backward
    seconds: float = 0.0  # wall time inside the all-to-alls

    def as_list(self) -> list[float]:
        return [self.sent, self.received, self.bytes, self.seconds]


def start(cfg: Config) -> ExpertParallel:
    """Join the job torchrun started (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT in the environment)."""
    n = cfg.train.expert_parallel
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise ConfigError(f"--expert-parallel {n}: start one process per rank with torchrun, e.g. torchrun "
                          f"--standalone --nproc-per-node {n} -m minimoe.train --expert-parallel {n} "
                          f"(just moe-train-ep {n})")
    world = int(os.environ["WORLD_SIZE"])
    if world != n:
        raise ConfigError(f"--expert-parallel {n}: torchrun started {world} rank(s); give it --nproc-per-node {n}")
    if not dist.is_initialized():
        dist.init_process_group()  # no backend named: gloo for CPU tensors, NCCL for CUDA ones
    return ExpertParallel(dist.get_rank(), world)


def finish() -> int:
    """Leave the job; returns this process's rank."""
    rank = dist.get_rank()
    dist.destroy_process_group()
    return rank


class ExpertParallel:
    """One rank's part: its experts, the all-to-all forward of its MoE layers, the reductions."""

    def __init__(self, rank: int, world: int):
        self.rank, self.world = rank, world
        self.traffic = Traffic()

    def rows(self, x_BS: torch.Tensor) -> torch.Tensor:
        """This rank's B/N sequences of a batch every rank drew alike."""
        b = len(x_BS) // self.world
        return x_BS[self.rank * b:(self.rank + 1) * b]

    def shard(self, model: MiniLM) -> None:
        """Keep this rank's E/N experts of every MoE layer, and run the layers through the all-to-all."""
        for block in model.moe_blocks:
            e = block.experts.n // self.world
            for name in EXPERT_WEIGHTS:
                w = getattr(block.experts, name).detach()
                setattr(block.experts, name, nn.Parameter(w[self.rank * e:(self.rank + 1) * e].clone()))
            block.experts_forward = self.moe_forward

    def unshard(self, model: MiniLM, experts_forward) -> None:
        """Gather every rank's experts back into each layer (for evaluation and checkpoints)."""
        for block in model.moe_blocks:
            for name in EXPERT_WEIGHTS:
                w = getattr(block.experts, name).detach()
                parts = [torch.empty_like(w) for _ in range(self.world)]
                dist.all_gather(parts, w.contiguous())
                setattr(block.experts, name, nn.Parameter(torch.cat(parts)))
            block.experts_forward = experts_forward

    # ------------------------------------------------------------ forward

    def _timed(self, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        self.traffic.seconds += time.perf_counter() - t0
        return out

    def _time_backward(self, out: torch.Tensor, inp: torch.Tensor) -> None:
        """Time the backward all-to-all: from the gradient reaching its output to the gradient leaving its input."""
        if out.requires_grad and inp.requires_grad:
            out.register_hook(lambda g: setattr(self, "_t0", time.perf_counter()))
            inp.register_hook(lambda g: setattr(self.traffic, "seconds",
                                                self.traffic.seconds + time.perf_counter() - self._t0))

    def moe_forward(self, x_TD: torch.Tensor, ids_TK: torch.Tensor, weights_TK: torch.Tensor,
                    experts: Experts) -> torch.Tensor:
        """moe_block.moe_forward with the experts on N ranks: this rank's experts are `experts`."""
        T, K = ids_TK.shape
        N, E_l = self.world, experts.n
        expert_A, order_A = ids_TK.reshape(-1).sort(stable=True)  # 2.
        send_E = torch.bincount(expert_A, minlength=N * E_l)  # rows for every expert of every rank
        recv_NE = torch.empty_like(send_E)
        self._timed(dist.all_to_all_single, recv_NE, send_E)  # 3. recv_NE[j*E_l + e]: rows rank j sends my expert e
        recv_NE = recv_NE.view(N, E_l)
        send_N, recv_N = send_E.view(N, E_l).sum(1).tolist(), recv_NE.sum(1).tolist()  # rows to / from each rank
        x_AD = x_TD.index_select(0, order_A // K)
        x_RD = self._timed(all_to_all_single_autograd, x_AD, recv_N, send_N, dist.group.WORLD)  # 4.
        self._time_backward(x_RD, x_AD)
        local_R = torch.arange(E_l).repeat(N).repeat_interleave(recv_NE.reshape(-1))  # my expert of each row
        _, by_expert_R = local_R.sort(stable=True)
        end_E = torch.bincount(local_R, minlength=E_l).cumsum(0)
        y_RD = experts(x_RD.index_select(0, by_expert_R), end_E)  # 5. rows sorted by my expert
        back_R = torch.empty_like(by_expert_R)
        back_R[by_expert_R] = torch.arange(len(by_expert_R))  # where each arrival sits in the sorted rows
        y_RD = y_RD.index_select(0, back_R)  # back in the order the rows arrived
        y_AD = self._timed(all_to_all_single_autograd, y_RD, send_N, recv_N, dist.group.WORLD)  # 6.
        self._time_backward(y_AD, y_RD)
        off = send_N[self.rank]  # rows that stayed on this rank do not cross the network
        t = self.traffic
        t.sent, t.received = t.sent + sum(send_N) - off, t.received + sum(recv_N) - off
        per_row = x_TD.shape[1] * x_TD.element_size()
        t.bytes += (sum(send_N) + sum(recv_N) - 2 * off) * per_row * (2 if x_TD.requires_grad else 1)
        row_TK = torch.empty_like(order_A)
        row_TK[order_A] = torch.arange(T * K)  # 7. the row that holds (t, k)'s output
        y_TKD = y_AD.index_select(0, row_TK).view(T, K, -1)
        return (y_TKD * weights_TK.unsqueeze(-1).to(y_TKD.dtype)).sum(dim=1)

    # ------------------------------------------------------------ losses and gradients

    def aux_share(self, r: Routing) -> torch.Tensor:
        """This rank's part of the whole batch's Switch aux loss E * sum_e f_e * P_e (loss.py): f_e from
        every rank's assignments, P_e from this rank's probabilities over all N*T tokens; the parts add up."""
        E = r.probs_TE.shape[-1]
        local_E = torch.bincount(r.ids_TK.reshape(-1), minlength=E).to(r.probs_TE.dtype)
        global_E = local_E.clone()
        dist.all_reduce(global_E)  # every rank's assignments to each expert
        f_E = global_E / global_E.sum()
        P_E = r.probs_TE.sum(dim=0) / (len(r.probs_TE) * self.world)
        return E * (f_E * P_E).sum()

    def combine_losses(self, main_loss: torch.Tensor, routings: list[Routing], aux_alpha: float,
                       z_alpha: float = 0.0) -> LossParts:
        """This rank's share of loss.combine_losses over the whole batch; the parts reported are the sums
        over the ranks, the one-process values."""
        zero = main_loss.new_zeros(())
        aux = torch.stack([self.aux_share(r) for r in routings]).mean() if routings else zero
        z = torch.stack([router_z_loss(r.logits_TE) for r in routings]).mean() / self.world \
            if routings and z_alpha else zero
        total = main_loss / self.world + aux_alpha * aux + z_alpha * z
        parts = torch.stack([main_loss.detach() / self.world, aux.detach(), z.detach()])
        dist.all_reduce(parts)
        return LossParts(total, parts[0], parts[1], parts[2])

    def all_reduce_grads(self, model: nn.Module) -> None:
        """Sum the replicated parameters' gradients over the ranks, in one flat all-reduce."""
        params = [p for name, p in model.named_parameters() if replicated(name)]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        for p, g in zip(params, flat.split([g.numel() for g in grads])):
            p.grad = g.view_as(p)

    def global_loads(self, routings: list[Routing]) -> list[torch.Tensor]:
        """Every layer's load_E summed over the ranks: the telemetry of the whole batch."""
        if not routings:
            return []
        load_LE = torch.stack([r.load_E for r in routings])
        dist.all_reduce(load_LE)
        return list(load_LE)

    def gather_traffic(self, train_seconds: float) -> list[dict]:
        """Every rank's Traffic and training time, one dict per rank (the same list on every rank)."""
        mine = torch.tensor([*self.traffic.as_list(), train_seconds], dtype=torch.float64)
        every = [torch.empty_like(mine) for _ in range(self.world)]
        dist.all_gather(every, mine)
        keys = ("sent", "received", "bytes", "a2a_seconds", "train_seconds")
        rows = [dict(zip(keys, v.tolist())) for v in every]
        for rank, row in enumerate(rows):
            row.update(rank=rank, a2a_share=row["a2a_seconds"] / max(row["train_seconds"], 1e-9))
        return rows


# ---------------------------------------------------------------- local jobs (tests, experiments)

def _enter(rank: int, world: int, store: str, fn, args) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        fn(rank, world, *args)
        dist.barrier()  # every rank done before any closes its connections (a peer gone mid-exchange aborts gloo)
    finally:
        dist.destroy_process_group()


def spawn_local(fn, world: int, args: tuple = (), timeout: float = 120.0, attempts: int = 2) -> None:
    """Run fn(rank, world, *args) in `world` fresh processes joined by gloo on this machine, as torchrun would,
    and wait at most `timeout` seconds. fn must be importable (module level). The ranks meet through a file,
    not a port: a port picked free and then released can be taken by another job's connection before rank 0
    binds it, when two jobs start at once (as parallel tests do). A job whose rank is killed by a signal (gloo
    has been seen to abort one, rarely, with two jobs running at once) runs again, up to `attempts` times in
    all, saying so; an exception raised by fn is never retried, nor is a rank that dies the same way twice."""
    for attempt in range(1, attempts + 1):
        try:
            return _spawn_once(fn, world, args, timeout)
        except mp.ProcessExitedException as e:
            if not e.signal_name or attempt == attempts:
                raise
            print(f"note: rank {e.error_index} of a {world}-rank job was killed by {e.signal_name}; running the "
                  f"job again (attempt {attempt + 1} of {attempts})", file=sys.stderr, flush=True)


def _spawn_once(fn, world: int, args: tuple, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="minimoe-ranks-") as tmp:
        ctx = mp.start_processes(_enter, args=(world, str(Path(tmp) / "store"), fn, args), nprocs=world,
                                 join=False, start_method="spawn")
        deadline = time.monotonic() + timeout
        while not ctx.join(timeout=max(0.0, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                for p in ctx.processes:
                    if p.is_alive():
                        p.kill()
                raise TimeoutError(f"{world} ranks did not finish within {timeout:.0f} s")
