import assert from "node:assert/strict";
import { test } from "node:test";
import * as torch from "../../src/tensor/index.js";

test("tidy frees intermediates and keeps results", () => {
  const before = torch.liveTensors();
  const result = torch.tidy(() => {
    const a = torch.ones([4]);
    const b = a.mul(2);
    const c = b.add(1);
    return { c, nested: [c.sum()] };
  });
  assert.equal(torch.liveTensors(), before + 2);
  assert.equal(result.c.isDisposed, false);
  assert.equal(result.nested[0]!.item(), 12);
  torch.dispose(result);
  assert.equal(torch.liveTensors(), before);
});

test("nested tidy hands results to the parent", () => {
  const before = torch.liveTensors();
  const outer = torch.tidy(() => {
    const inner = torch.tidy(() => torch.ones([2]).mul(3));
    assert.equal(inner.isDisposed, false);
    return inner.add(1);
  });
  assert.equal(torch.liveTensors(), before + 1);
  assert.deepEqual(Array.from(outer.toFloat32Array()), [4, 4]);
  outer.dispose();
  assert.equal(torch.liveTensors(), before);
});

test("tidy frees everything when fn throws", () => {
  const before = torch.liveTensors();
  assert.throws(() =>
    torch.tidy(() => {
      torch.ones([3]).mul(2);
      throw new Error("boom");
    }),
  );
  assert.equal(torch.liveTensors(), before);
  assert.equal(torch.scopeDepth(), 0);
});

test("keep protects a tensor from its scope", () => {
  let kept: torch.Tensor | null = null;
  torch.tidy(() => {
    kept = torch.keep(torch.ones([2]));
    torch.ones([2]);
  });
  assert.equal(kept!.isDisposed, false);
  kept!.dispose();
});

test("use after dispose raises a DISPOSED error", () => {
  const x = torch.ones([2]);
  x.dispose();
  x.dispose();
  assert.throws(
    () => x.add(1),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, "DISPOSED");
      assert.match(error.message, /after dispose\(\)/);
      return true;
    },
  );
});

test("tidy rejects async functions", () => {
  assert.throws(() => torch.tidy(() => Promise.resolve(1)), /synchronous/);
});

test("training loop keeps a flat resident set", () => {
  // An MLP big enough that a per-step leak of its activations (about 0.5 MB) would show.
  const generator = new torch.Generator(0);
  const w1 = torch.randn([256, 128], { generator }).mul(0.05).requiresGrad_();
  const w2 = torch.randn([16, 256], { generator }).mul(0.05).requiresGrad_();
  const x = torch.randn([128, 128], { generator });
  const y = torch.randn([128, 16], { generator });
  const params = [w1, w2];
  const optimizer = torch.adamw([{ params, lr: 1e-3 }]);
  const step = () =>
    torch.tidy(() => {
      const h = torch.linear(x, w1).silu(); // [128, 256]
      const loss = torch.linear(h, w2).sub(y).square().mean();
      optimizer.zeroGrad();
      loss.backward();
      torch.clipGradNorm(params, 1);
      optimizer.step();
      return loss.item();
    });
  for (let i = 0; i < 200; i++) step();
  const liveAfterWarmup = torch.liveTensors();
  const rssAfterWarmup = process.memoryUsage().rss;
  let first = 0;
  let last = 0;
  for (let i = 0; i < 2000; i++) {
    last = step();
    if (i === 0) first = last;
  }
  const growth = (process.memoryUsage().rss - rssAfterWarmup) / 2 ** 20;
  assert.equal(torch.liveTensors(), liveAfterWarmup, "no tensor handles leaked");
  assert.ok(growth < 50, `resident set grew by ${growth.toFixed(1)} MB over 2,000 steps`);
  assert.ok(last < first, `loss fell (${first} -> ${last})`);
  torch.dispose([w1, w2, x, y]);
});
