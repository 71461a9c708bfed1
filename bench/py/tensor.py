"""PyTorch side of bench/tensor.ts: the same work, shapes, seeds and thread count.

Usage: python3 tensor.py '{"threads": 2, "block": {...}, "rowShapes": [[512, 512], ...]}'; prints
one JSON object.
"""
import json
import math
import sys
import time

import torch


def time_it(fn, warmup=2, min_seconds=1.0, min_runs=3):
    for _ in range(warmup):
        fn()
    samples = []
    start = time.perf_counter()
    while len(samples) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return samples[len(samples) // 2]


def matmul_gflops(dtype):
    n = 1024
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g, dtype=dtype)
    b = torch.randn(n, n, generator=g, dtype=dtype)
    seconds = time_it(lambda: a @ b, warmup=3, min_seconds=1.5)
    return 2 * n**3 / seconds / 1e9


def rms_norm(x, weight, eps):
    variance = x.float().pow(2).mean(-1, keepdim=True)
    return x * torch.rsqrt(variance + eps) * weight


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def block_tokens_per_second(cfg, bf16):
    B, T, C, H, F = cfg["batch"], cfg["seq"], cfg["dim"], cfg["heads"], cfg["hidden"]
    D = C // H
    g = torch.Generator().manual_seed(1)
    p = lambda *shape: (torch.randn(*shape, generator=g) * 0.02).requires_grad_()
    params = dict(
        norm1=torch.ones(C, requires_grad=True), wq=p(C, C), wk=p(C, C), wv=p(C, C), wo=p(C, C),
        norm2=torch.ones(C, requires_grad=True), gate=p(F, C), up=p(F, C), down=p(C, F),
    )
    inv = torch.exp(torch.arange(0, D, 2, dtype=torch.float32) / D * -math.log(cfg["theta"]))
    freqs = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
    emb = torch.cat([freqs, freqs], -1)
    cos, sin = emb.cos(), emb.sin()
    x = torch.randn(B, T, C, generator=torch.Generator().manual_seed(2))
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    F_ = torch.nn.functional

    def forward():
        h = rms_norm(x, params["norm1"], cfg["eps"])
        q = F_.linear(h, params["wq"]).view(B, T, H, D).transpose(1, 2)
        k = F_.linear(h, params["wk"]).view(B, T, H, D).transpose(1, 2)
        v = F_.linear(h, params["wv"]).view(B, T, H, D).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        # Explicit attention, as libtorch 1.13 has no fused kernel.
        scores = (q @ k.transpose(-2, -1)) * (1 / math.sqrt(D))
        scores = scores.masked_fill(~mask, float("-inf"))
        attn = scores.softmax(-1) @ v
        merged = attn.transpose(1, 2).reshape(B, T, C)
        x1 = x + F_.linear(merged, params["wo"])
        h2 = rms_norm(x1, params["norm2"], cfg["eps"])
        mlp = F_.linear(F_.silu(F_.linear(h2, params["gate"])) * F_.linear(h2, params["up"]), params["down"])
        return (x1 + mlp).float().pow(2).mean()

    def step():
        if bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = forward()
        else:
            loss = forward()
        loss.backward()
        for value in params.values():
            value.grad = None

    seconds = time_it(step, warmup=2, min_seconds=3)
    return B * T / seconds


def linear_row_gflops(out, in_features):
    g = torch.Generator().manual_seed(3)
    weight = torch.randn(out, in_features, generator=g)
    x = torch.randn(1, 1, in_features, generator=g)
    with torch.inference_mode():
        seconds = time_it(lambda: torch.nn.functional.linear(x, weight), warmup=5, min_seconds=1)
    return 2 * out * in_features / seconds / 1e9


def small_op_microseconds():
    a = torch.ones(16)
    b = torch.ones(16)
    calls = 20000

    def loop():
        for _ in range(calls):
            a + b

    return time_it(loop, warmup=1, min_seconds=1) / calls * 1e6


def main():
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    cfg = args["block"]
    print(json.dumps({
        "matmul-1024": matmul_gflops(torch.float32),
        "matmul-1024-bf16": matmul_gflops(torch.bfloat16),
        "block-fwd-bwd": block_tokens_per_second(cfg, False),
        "block-fwd-bwd-bf16": block_tokens_per_second(cfg, True),
        "small-op-overhead": small_op_microseconds(),
        "linear-row": {f"{o}x{i}": linear_row_gflops(o, i) for o, i in args["rowShapes"]},
    }))


if __name__ == "__main__":
    main()
