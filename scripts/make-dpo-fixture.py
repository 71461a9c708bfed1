#!/usr/bin/env python3
"""Writes test/fixtures/dpo/losses.json: DPO losses and gradients computed by PyTorch.

The "model" is one linear layer W [D, V] over fixed inputs x [2B, T, D]: log-probs are
log_softmax(x @ W), gathered at the target tokens and summed over the response mask, which is
the computation a causal LM's head performs. Reference log-probs are fixed random numbers. For
each loss type, with and without label smoothing and soft targets, the fixture records the loss,
the per-pair losses, the rewards and dLoss/dW. Computed in float64 from float32-exact inputs.

Run with Debian's Python and torch:  /usr/bin/python3 scripts/make-dpo-fixture.py
"""

import json
import os

import torch
import torch.nn.functional as F

B, T, D, V = 3, 5, 4, 7
SEED = 1234


def dpo_losses(h, beta, loss_type, eps, p):
    """Per-pair losses; the same formulas as src/train/losses.ts, written independently."""
    q = (1 - eps) * p + eps * (1 - p)
    if loss_type == "sigmoid":
        return -(q * F.logsigmoid(beta * h) + (1 - q) * F.logsigmoid(-beta * h))
    if loss_type == "ipo":
        m = 1 / (2 * beta)
        return q * (h - m) ** 2 + (1 - q) * (h + m) ** 2
    if loss_type == "hinge":
        return q * torch.relu(1 - beta * h) + (1 - q) * torch.relu(1 + beta * h)
    if loss_type == "robust":
        fwd = -F.logsigmoid(beta * h)
        bwd = -F.logsigmoid(-beta * h)
        plus = ((1 - eps) * fwd - eps * bwd) / (1 - 2 * eps)
        minus = ((1 - eps) * bwd - eps * fwd) / (1 - 2 * eps)
        return p * plus + (1 - p) * minus
    raise ValueError(loss_type)


def main():
    g = torch.Generator().manual_seed(SEED)
    # float32 draws, so the TypeScript side receives exactly these values.
    x = torch.randn(2 * B, T, D, generator=g)
    weight = torch.randn(D, V, generator=g)
    tokens = torch.randint(0, V, (2 * B, T), generator=g)
    # Response mask: the first tokens of each row are prompt, the rest response.
    mask = torch.zeros(2 * B, T)
    starts = [1, 2, 1, 3, 2, 1]
    for row, start in enumerate(starts):
        mask[row, start:] = 1
    ref = torch.randn(2 * B, generator=g) * 2 - 8
    soft = torch.tensor([0.9, 0.3, 0.6])

    cases = []
    for loss_type in ["sigmoid", "ipo", "hinge", "robust"]:
        for beta in [0.1, 0.5]:
            for eps in [0.0, 0.2]:
                for targets in [None, soft]:
                    w = weight.double().clone().requires_grad_(True)
                    logp = torch.log_softmax(x.double() @ w, dim=-1)
                    tok = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
                    seq = (tok * mask.double()).sum(-1)
                    policy_chosen, policy_rejected = seq[:B], seq[B:]
                    ref_chosen, ref_rejected = ref[:B].double(), ref[B:].double()
                    h = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
                    p = torch.ones(B, dtype=torch.float64) if targets is None else targets.double()
                    losses = dpo_losses(h, beta, loss_type, eps, p)
                    loss = losses.mean()
                    loss.backward()
                    cases.append(
                        {
                            "lossType": loss_type,
                            "beta": beta,
                            "labelSmoothing": eps,
                            "targets": None if targets is None else targets.tolist(),
                            "loss": loss.item(),
                            "losses": losses.tolist(),
                            "chosenRewards": (beta * (policy_chosen - ref_chosen)).tolist(),
                            "rejectedRewards": (beta * (policy_rejected - ref_rejected)).tolist(),
                            "policyChosen": policy_chosen.tolist(),
                            "policyRejected": policy_rejected.tolist(),
                            "gradWeight": w.grad.flatten().tolist(),
                        }
                    )

    fixture = {
        "generator": "scripts/make-dpo-fixture.py",
        "torch": torch.__version__,
        "shapes": {"B": B, "T": T, "D": D, "V": V},
        "x": x.flatten().tolist(),
        "weight": weight.flatten().tolist(),
        "tokens": tokens.flatten().tolist(),
        "mask": mask.flatten().tolist(),
        "refLogps": ref.tolist(),
        "cases": cases,
    }
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = os.path.join(root, "test", "fixtures", "dpo")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, "losses.json")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    os.replace(tmp, out)
    print(f"wrote {out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
