"""Reference GPT-2 logits for test/models/gpt2.test.ts, from a plain PyTorch GPT-2.

Written from the GPT-2 equations (transformers' GPT2LMHeadModel: Conv1D weights [in, out],
gelu_new, causal attention, tied head), independently of cdpo. It reads model.safetensors with
its own header parser and prints, per position, chosen logits and the logsumexp of the row.

Usage: /usr/bin/python3 gpt2_logits.py MODEL_DIR IDS (comma-separated) COLUMNS (comma-separated)
"""
import json
import math
import struct
import sys

import torch


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        begin, end = info["data_offsets"]
        out[name.removeprefix("transformer.")] = torch.frombuffer(
            bytearray(data[begin:end]), dtype=torch.float32
        ).reshape(info["shape"])
    return out


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def main():
    folder, ids, columns = sys.argv[1], sys.argv[2], sys.argv[3]
    config = json.load(open(f"{folder}/config.json"))
    p = load(f"{folder}/model.safetensors")
    ids = torch.tensor([int(i) for i in ids.split(",")])
    columns = [int(c) for c in columns.split(",")]
    C, H, eps = config["n_embd"], config["n_head"], config["layer_norm_epsilon"]
    D, T = C // H, len(ids)
    h = p["wte.weight"][ids] + p["wpe.weight"][:T]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(config["n_layer"]):
        g = lambda n: p[f"h.{i}.{n}"]
        a = layer_norm(h, g("ln_1.weight"), g("ln_1.bias"), eps)
        q, k, v = (a @ g("attn.c_attn.weight") + g("attn.c_attn.bias")).split(C, -1)
        q, k, v = (t.view(T, H, D).transpose(0, 1) for t in (q, k, v))
        w = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        w = torch.where(causal, w, torch.tensor(torch.finfo(torch.float32).min))
        o = (w.softmax(-1) @ v).transpose(0, 1).reshape(T, C)
        h = h + o @ g("attn.c_proj.weight") + g("attn.c_proj.bias")
        m = layer_norm(h, g("ln_2.weight"), g("ln_2.bias"), eps)
        m = gelu_new(m @ g("mlp.c_fc.weight") + g("mlp.c_fc.bias"))
        h = h + m @ g("mlp.c_proj.weight") + g("mlp.c_proj.bias")
    h = layer_norm(h, p["ln_f.weight"], p["ln_f.bias"], eps)
    logits = h.double() @ p["wte.weight"].double().T
    print(json.dumps({
        "columns": logits[:, columns].tolist(),
        "logsumexp": logits.logsumexp(-1).tolist(),
    }))


main()
