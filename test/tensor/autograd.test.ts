import assert from "node:assert/strict";
import { test } from "node:test";
import * as torch from "../../src/tensor/index.js";

test("backward with an explicit gradient", () => {
  const x = torch.tensor([1, 2, 3], [3], { requiresGrad: true });
  const y = x.mul(x);
  y.backward(torch.tensor([1, 0.5, 2]));
  assert.deepEqual(Array.from(x.grad!.toFloat32Array()), [2, 2, 12]);
});

test("gradients accumulate and zeroGrad clears them", () => {
  const x = torch.tensor([1, 2], [2], { requiresGrad: true });
  x.mul(3).sum().backward();
  x.mul(3).sum().backward();
  assert.deepEqual(Array.from(x.grad!.toFloat32Array()), [6, 6]);
  torch.zeroGrad([x], false);
  assert.deepEqual(Array.from(x.grad!.toFloat32Array()), [0, 0]);
  torch.zeroGrad([x]);
  assert.equal(x.grad, null);
});

test("detach and noGrad stop recording", () => {
  const x = torch.tensor([1, 2], [2], { requiresGrad: true });
  assert.equal(x.mul(2).requiresGrad, true);
  assert.equal(x.detach().mul(2).requiresGrad, false);
  const inside = torch.noGrad(() => {
    assert.equal(torch.isGradEnabled(), false);
    return x.mul(2).requiresGrad;
  });
  assert.equal(inside, false);
  assert.equal(torch.isGradEnabled(), true);
  assert.equal(
    torch.inferenceMode(() => x.mul(2).requiresGrad),
    false,
  );
  assert.equal(
    torch.noGrad(() => torch.enableGrad(() => x.mul(2).requiresGrad)),
    true,
  );
});

test("grad mode is restored when the scope throws", () => {
  assert.throws(() =>
    torch.noGrad(() => {
      throw new Error("inside");
    }),
  );
  assert.equal(torch.isGradEnabled(), true);
});

test("clipGradNorm returns the norm and scales", () => {
  const x = torch.tensor([0, 0], [2], { requiresGrad: true });
  x.mul(torch.tensor([3, 4]))
    .sum()
    .backward();
  const norm = torch.clipGradNorm([x], 1);
  assert.ok(Math.abs(norm - 5) < 1e-6);
  const g = x.grad!.toFloat32Array();
  assert.ok(Math.abs(g[0]! - 0.6) < 1e-5 && Math.abs(g[1]! - 0.8) < 1e-5);
});

test("autocast runs matmul in bfloat16 and keeps float32 gradients", () => {
  const w = torch.randn([8, 8], { generator: new torch.Generator(1) }).requiresGrad_();
  const x = torch.randn([4, 8], { generator: new torch.Generator(2) });
  const out = torch.autocast(() => {
    assert.equal(torch.isAutocastEnabled(), true);
    return torch.linear(x, w);
  });
  assert.equal(torch.isAutocastEnabled(), false);
  assert.equal(out.dtype, "bfloat16");
  out.float().sum().backward();
  assert.equal(w.grad!.dtype, "float32");
  const reference = torch.linear(x, w).toFloat32Array();
  const approx = out.toFloat32Array();
  for (let i = 0; i < reference.length; i++) {
    assert.ok(Math.abs(reference[i]! - approx[i]!) < 0.05 * Math.max(1, Math.abs(reference[i]!)));
  }
});

test("adamw matches the closed-form first step", () => {
  // The first AdamW step moves each weight by lr * sign(grad) (m/sqrt(v) = g/|g|), after decay.
  const w = torch.tensor([1, -1], [2], { requiresGrad: true });
  const optimizer = torch.adamw([{ params: [w], lr: 0.1, weightDecay: 0.5 }]);
  w.mul(torch.tensor([2, 3]))
    .sum()
    .backward();
  optimizer.step();
  const v = w.toFloat32Array();
  assert.ok(Math.abs(v[0]! - (1 * (1 - 0.1 * 0.5) - 0.1)) < 1e-6, `w0 ${v[0]}`);
  assert.ok(Math.abs(v[1]! - (-1 * (1 - 0.1 * 0.5) - 0.1)) < 1e-6, `w1 ${v[1]}`);
});

test("optimizer state restores the same trajectory", () => {
  const run = (restoreAt: number | null) => {
    const w = torch.tensor([0.5, -0.3, 0.2], [3], { requiresGrad: true });
    let optimizer = torch.adamw([{ params: [w], lr: 0.05 }]);
    for (let step = 0; step < 6; step++) {
      if (step === restoreAt) {
        const state = optimizer.stateDict();
        optimizer = torch.adamw([{ params: [w], lr: 0.05 }]);
        optimizer.loadStateDict(state);
      }
      optimizer.zeroGrad();
      torch.tidy(() =>
        w
          .sub(torch.tensor([1, 2, 3]))
          .square()
          .sum()
          .backward(),
      );
      optimizer.step();
    }
    return Array.from(w.toFloat32Array());
  };
  assert.deepEqual(run(3), run(null));
});

test("sgd with momentum", () => {
  const w = torch.tensor([1], [1], { requiresGrad: true });
  const optimizer = torch.sgd([{ params: [w], lr: 0.1 }], { momentum: 0.9 });
  for (let i = 0; i < 2; i++) {
    optimizer.zeroGrad();
    w.mul(2).sum().backward();
    optimizer.step();
  }
  // v1 = 2, w = 0.8; v2 = 0.9 * 2 + 2 = 3.8, w = 0.8 - 0.38
  assert.ok(Math.abs(w.item() - 0.42) < 1e-6);
  optimizer.setLr(0.5);
  assert.equal(optimizer.getLr(), 0.5);
});
