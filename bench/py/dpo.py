"""PyTorch side of bench/dpo.ts: one DPO optimizer step on a Llama, in plain eager PyTorch.

The step is the usual TRL one: chosen and rejected rows concatenated on the batch axis
([2B, T]), one forward pass with logits at every position, log_softmax, the log-probabilities
of the response tokens summed per row, the sigmoid DPO loss against cached reference
log-probabilities, backward, AdamW. Same model shape, sequence layout and thread count as the
TypeScript side; under torch.autocast("cpu", dtype=torch.bfloat16) for the bf16 line.

Usage: python3 dpo.py '{"threads": 2, "precision": "fp32", "model": {...}, "pairs": 8,
"prompt": 128, "response": 128}'. Prints one JSON object: pairs per second, seconds per step
(the fastest of at least 3 timed steps) and the matmul peak of the dtype. With "serve": true it
reads commands from stdin instead ("step", "peak", anything else quits) and answers each with one
JSON line, so that bench/dpo.ts can alternate PyTorch steps with its own.
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


def time_it(fn, warmup=1, min_seconds=3.0, min_runs=3):
    """Fastest of the timed runs: the least disturbed by other processes on a shared machine."""
    for _ in range(warmup):
        fn()
    samples = []
    start = time.perf_counter()
    while len(samples) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return min(samples)


def matmul_gflops(dtype):
    n = 1024
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g, dtype=dtype)
    b = torch.randn(n, n, generator=g, dtype=dtype)
    seconds = time_it(lambda: a @ b, warmup=3, min_seconds=1.5)
    return 2 * n**3 / seconds / 1e9


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        variance = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * torch.rsqrt(variance + self.eps)).to(x.dtype) * self.weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class Block(torch.nn.Module):
    def __init__(self, c, heads, ffn, eps):
        super().__init__()
        self.heads = heads
        self.input_layernorm = RMSNorm(c, eps)
        self.q_proj = torch.nn.Linear(c, c, bias=False)
        self.k_proj = torch.nn.Linear(c, c, bias=False)
        self.v_proj = torch.nn.Linear(c, c, bias=False)
        self.o_proj = torch.nn.Linear(c, c, bias=False)
        self.post_attention_layernorm = RMSNorm(c, eps)
        self.gate_proj = torch.nn.Linear(c, ffn, bias=False)
        self.up_proj = torch.nn.Linear(c, ffn, bias=False)
        self.down_proj = torch.nn.Linear(ffn, c, bias=False)

    def forward(self, x, cos, sin, bias):
        b, t, c = x.shape
        d = c // self.heads
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(b, t, self.heads, d).transpose(1, 2)
        k = self.k_proj(h).view(b, t, self.heads, d).transpose(1, 2)
        v = self.v_proj(h).view(b, t, self.heads, d).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        scores = q @ k.transpose(2, 3) / math.sqrt(d) + bias
        probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
        y = (probs @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.o_proj(y)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg["hidden"]
        self.embed_tokens = torch.nn.Embedding(cfg["vocab"], c)
        self.layers = torch.nn.ModuleList(
            Block(c, cfg["heads"], cfg["intermediate"], cfg["eps"]) for _ in range(cfg["layers"])
        )
        self.norm = RMSNorm(c, cfg["eps"])
        d = c // cfg["heads"]
        self.inv_freq = 1.0 / (cfg["theta"] ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)

    def forward(self, ids):
        b, t = ids.shape
        freqs = torch.arange(t, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos(), emb.sin()
        bias = torch.full((t, t), torch.finfo(torch.float32).min).triu(1)
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, bias)
        x = self.norm(x)
        return x @ self.embed_tokens.weight.t()  # tied head: logits [2B, T, V]


def make_step(cfg, pairs, prompt, response, bf16):
    """Builds the model, data and optimizer; returns a function that runs one DPO step."""
    torch.manual_seed(0)
    model = Llama(cfg)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    plain = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": plain, "weight_decay": 0.0}], lr=1e-5
    )
    g = torch.Generator().manual_seed(1)
    t = prompt + response
    ids = torch.randint(0, cfg["vocab"], (2 * pairs, t), generator=g)
    ids[pairs:, :prompt] = ids[:pairs, :prompt]  # chosen and rejected share their prompt
    mask = torch.zeros(2 * pairs, t - 1)
    mask[:, prompt - 1 :] = 1  # logits at t-1 predict response token t
    ref = torch.randn(2 * pairs, generator=g) - 300
    beta = 0.1

    def step():
        optimizer.zero_grad(set_to_none=True)

        def forward():
            logits = model(ids)[:, :-1].float()
            logps = logits.log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
            seq = (logps * mask).sum(-1)
            h = (seq[:pairs] - ref[:pairs]) - (seq[pairs:] - ref[pairs:])
            return -F.logsigmoid(beta * h).mean()

        if bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = forward()
        else:
            loss = forward()
        loss.backward()
        optimizer.step()

    return step


def main():
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    bf16 = args["precision"] == "bf16"
    step = make_step(args["model"], args["pairs"], args["prompt"], args["response"], bf16)
    if not args.get("serve", False):
        seconds = time_it(step)
        peak = matmul_gflops(torch.bfloat16 if bf16 else torch.float32)
        print(json.dumps({"pairs_per_second": args["pairs"] / seconds, "seconds_per_step": seconds, "peak_gflops": peak}))
        return
    # Serve mode: the TypeScript side interleaves its own steps with ours, one command per line.
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "step":
            t0 = time.perf_counter()
            step()
            print(json.dumps({"seconds": time.perf_counter() - t0}), flush=True)
        elif command == "peak":
            print(json.dumps({"gflops": matmul_gflops(torch.bfloat16 if bf16 else torch.float32)}), flush=True)
        else:
            break


if __name__ == "__main__":
    main()
