"""Does each model of the fair comparison get the budget of the contract it declares?

Under totalDN a model trains on gamma * P_total tokens, under activeDN on gamma * P_active, where the
parameters are counted from the built modules. A dense model has P_total = P_active, so only the
MoE rows can tell the two contracts apart. budget_gap is the largest error in tokens over every row
(the audit's column of that name).
"""

import math

import torch

from minimoe.experiments.fair import audit_comparison, plan
from minimoe.model import MiniLM
from minimoe.params import CONTRACTS

from .test_param_counts import counted


def test_fair_budgets_follow_the_declared_contract(lab_base, seed, observe):
    torch.manual_seed(seed)
    models, gamma = audit_comparison(lab_base, seed)
    tok_per_step = lab_base.train.batch * lab_base.model.context
    rows = []
    for contract in CONTRACTS:
        plans = plan(models, contract, gamma)
        assert [r.name for r in plans] == list(models) and all(r.contract == contract for r in plans)
        for r in plans:
            n = counted(MiniLM(r.cfg))
            want = round(gamma * n[contract])
            other = "activeDN" if contract == "totalDN" else "totalDN"
            assert r.steps == math.ceil(r.tokens / tok_per_step)
            rows.append((abs(r.tokens - want),
                         f"{r.name} under {contract}: budget {r.tokens:,} tokens = {r.tokens / n[contract]:.2f} per "
                         f"{'stored' if contract == 'totalDN' else 'active'} parameter, gamma {gamma:.2f} "
                         f"({want:,} tokens); {r.tokens / n[other]:.2f} per parameter under {other}"))
    worst = max(rows)
    observe("budget_gap", worst[0], 0.0, "<=")
    assert worst[0] == 0, worst[1]
