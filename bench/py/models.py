"""PyTorch side of bench/models.ts: the same Llama, op for op, with the same weights and inputs.

The model mirrors src/models/llama.ts: RMSNorm in float32, rotary tables with the sign-folded sin,
a preallocated KV cache written in place, an additive causal bias, SwiGLU MLP, untied head.
Weights are drawn from torch.Generator(0) in cdpo's parameter order, so both sides hold the same
numbers and greedy decoding must give the same tokens.

Usage: python3 models.py '{"threads": 1, "config": {...}, ...}', then task names on stdin
(generate-kv-b1, generate-kv-b8, llama-fwd-bwd, greedy), one per line; it prints one JSON line for
each (a rate, or the greedy tokens) and exits when stdin closes.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def time_it(fn, warmup=1, min_seconds=1.0, min_runs=3):
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


class Llama:
    def __init__(self, cfg):
        self.cfg = cfg
        C, V, Fw = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
        H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.H, self.Hkv, self.D = H, Hkv, C // H
        self.eps = cfg["rms_norm_eps"]
        g = torch.Generator().manual_seed(0)
        std = cfg["initializer_range"]

        def normal(*shape):
            return (torch.randn(*shape, generator=g) * std).requires_grad_()

        ones = lambda n: torch.ones(n, requires_grad=True)
        D = self.D
        # Same creation order as cdpo: embed, per layer (q, k, v, o, gate, up, down, 2 norms), norm, head.
        self.embed = normal(V, C)
        self.layers = []
        for _ in range(cfg["num_hidden_layers"]):
            self.layers.append(dict(
                q=normal(H * D, C), k=normal(Hkv * D, C), v=normal(Hkv * D, C), o=normal(C, H * D),
                gate=normal(Fw, C), up=normal(Fw, C), down=normal(C, Fw),
                norm1=ones(C), norm2=ones(C),
            ))
        self.norm = ones(C)
        self.head = normal(V, C)
        # rotary tables as cdpo builds them
        L = 1024
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
        freqs = torch.arange(L, dtype=torch.float32).unsqueeze(1) * inv.unsqueeze(0)
        angles = torch.cat([freqs, freqs], -1)
        s = angles.sin()
        self.cos = angles.cos()
        self.sin = torch.cat([-s[:, : D // 2], s[:, D // 2 :]], 1)

    def parameters(self):
        ps = [self.embed]
        for layer in self.layers:
            ps += list(layer.values())
        return ps + [self.norm, self.head]

    def rms(self, x, w):
        variance = x.square().mean(-1, keepdim=True)
        return w * (x * (variance + self.eps).rsqrt())

    @staticmethod
    def rotate(x, cos, sin):
        half = x.shape[-1] // 2
        return x * cos + torch.cat([x[..., half:], x[..., :half]], -1) * sin

    def forward(self, ids, cache=None, past=0, keep=0):
        B, T = ids.shape
        H, Hkv, D = self.H, self.Hkv, self.D
        total = past + T
        bias = None
        if T > 1:
            allowed = torch.ones(T, total, dtype=torch.bool).tril(past).view(1, 1, T, total)
            bias = torch.zeros(allowed.shape).masked_fill(allowed.logical_not(), torch.finfo(torch.float32).min)
        cos, sin = self.cos[past:total], self.sin[past:total]
        x = F.embedding(ids, self.embed)
        for i, p in enumerate(self.layers):
            h = self.rms(x, p["norm1"])
            q = F.linear(h, p["q"]).view(B, T, H, D).transpose(1, 2)
            k = F.linear(h, p["k"]).view(B, T, Hkv, D).transpose(1, 2)
            v = F.linear(h, p["v"]).view(B, T, Hkv, D).transpose(1, 2)
            q = self.rotate(q, cos, sin)
            k = self.rotate(k, cos, sin)
            if cache is not None:
                ck, cv = cache[i]
                ck[:, :, past:total].copy_(k)
                cv[:, :, past:total].copy_(v)
                k, v = ck[:, :, :total], cv[:, :, :total]
            scores = q.matmul(k.transpose(2, 3)).mul(D ** -0.5)
            if bias is not None:
                scores = scores.add(bias)
            y = scores.softmax(-1).matmul(v).view(B, H, T, D).transpose(1, 2).reshape(B, T, H * D)
            x = x.add(F.linear(y, p["o"]))
            h = self.rms(x, p["norm2"])
            x = x.add(F.linear(F.silu(F.linear(h, p["gate"])).mul(F.linear(h, p["up"])), p["down"]))
        x = self.rms(x, self.norm)
        if keep:
            x = x[:, T - keep :]
        return F.linear(x, self.head)

    def generate(self, prompts, new_tokens):
        with torch.inference_mode():
            B, T = len(prompts), len(prompts[0])
            cache = [
                (torch.empty(B, self.Hkv, T + new_tokens, self.D), torch.empty(B, self.Hkv, T + new_tokens, self.D))
                for _ in self.layers
            ]
            ids = torch.tensor(prompts, dtype=torch.int64)
            out = [[] for _ in prompts]
            past = 0
            for _ in range(new_tokens):
                logits = self.forward(ids, cache, past, keep=1)
                past += ids.shape[1]
                chosen = logits[:, 0].argmax(-1).tolist()
                for row, token in zip(out, chosen):
                    row.append(token)
                ids = torch.tensor(chosen, dtype=torch.int64).view(B, 1)
            return out


def main():
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    cfg, gen, train = args["config"], args["generation"], args["training"]
    model = Llama(cfg)

    def generation_rate(prompts):
        seconds = time_it(lambda: model.generate(prompts, gen["newTokens"]))
        return len(prompts) * gen["newTokens"] / seconds

    seq = torch.tensor(args["sequence"], dtype=torch.int64)
    B, T, V = train["batch"], train["seq"], cfg["vocab_size"]
    params = model.parameters()

    def step():
        logits = model.forward(seq)
        loss = F.cross_entropy(logits[:, : T - 1].reshape(B * (T - 1), V), seq[:, 1:].reshape(B * (T - 1)))
        loss.backward()
        for p in params:
            p.grad = None

    tasks = {
        "generate-kv-b1": lambda: generation_rate(args["prompts1"]),
        "generate-kv-b8": lambda: generation_rate(args["prompts8"]),
        "llama-fwd-bwd": lambda: B * T / time_it(step, min_seconds=1.5),
        "greedy": lambda: model.generate(args["prompts8"], gen["newTokens"]),
    }
    # One task name per stdin line, one JSON value per stdout line, until stdin closes.
    for line in sys.stdin:
        print(json.dumps(tasks[line.strip()]()), flush=True)


main()
