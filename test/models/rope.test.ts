import assert from "node:assert/strict";
import { test } from "node:test";

import type { RopeScaling } from "../../src/models/index.js";
import { inverseFrequencies, RotaryEmbedding } from "../../src/models/index.js";
import { applyRotary } from "../../src/models/rope.js";
import * as torch from "../../src/tensor/index.js";
import { assertClose, maxAbsDiff } from "./helpers.js";

const base = (dim: number, theta: number) =>
  Array.from({ length: dim / 2 }, (_, i) => 1 / theta ** ((2 * i) / dim));

function scaling(type: RopeScaling["type"], extra: Partial<RopeScaling> = {}): RopeScaling {
  return {
    type,
    factor: 4,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 64,
    ...extra,
  };
}

test("rope inverse frequencies", () => {
  assertClose(inverseFrequencies(8, 10000, null, 64, 10), [1, 0.1, 0.01, 0.001], 1e-7);
  assertClose(
    inverseFrequencies(8, 10000, scaling("linear"), 64, 10),
    [0.25, 0.025, 0.0025, 0.00025],
    1e-7,
  );
  // dynamic: unchanged within the context, then theta * (factor * L / max - (factor - 1))^(D / (D - 2))
  assertClose(inverseFrequencies(8, 10000, scaling("dynamic"), 64, 64), base(8, 10000), 1e-7);
  const grown = 10000 * ((4 * 128) / 64 - 3) ** (8 / 6);
  assertClose(inverseFrequencies(8, 10000, scaling("dynamic"), 64, 128), base(8, grown), 1e-7);
});

test("rope llama3 scaling keeps high and divides low frequencies", () => {
  // Wavelengths 2π/f for theta 10000, D 8: 6.28, 62.8, 628, 6283. With a 64-token original context,
  // low_freq_factor 1 and high_freq_factor 4: < 16 kept, > 64 divided by 4, between smoothed.
  const inv = inverseFrequencies(8, 10000, scaling("llama3"), 64, 10);
  const plain = base(8, 10000);
  const smooth = (64 / ((2 * Math.PI) / plain[1]!) - 1) / (4 - 1);
  assertClose(
    inv,
    [plain[0]!, (1 - smooth) * (plain[1]! / 4) + smooth * plain[1]!, plain[2]! / 4, plain[3]! / 4],
    1e-7,
  );
});

test("rotary embedding matches the rotate_half formula", () => {
  torch.tidy(() => {
    const dim = 8;
    const rotary = new RotaryEmbedding(dim, 10000, null, 64, "float32", "cpu");
    const x = torch.randn([2, 3, 5, dim], { generator: new torch.Generator(0) }); // [B, H, T, D]
    const [cos, sin] = rotary.forward(null, 2, 5, 6); // positions 2..6
    const rotated = applyRotary(x, cos, sin);
    // x * cos(θ) + rotate_half(x) * sin(θ), with θ[t, i] = (t + 2) * inv[i mod D/2]
    const inv = base(dim, 10000);
    const angles = Array.from(
      { length: 5 * dim },
      (_, k) => (Math.floor(k / dim) + 2) * inv[(k % dim) % (dim / 2)]!,
    );
    const cosRef = torch.tensor(angles.map(Math.cos), [5, dim]);
    const sinRef = torch.tensor(angles.map(Math.sin), [5, dim]);
    const half = dim / 2;
    const rotateHalf = torch.cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
    const reference = x.mul(cosRef).add(rotateHalf.mul(sinRef));
    assert.ok(maxAbsDiff(rotated, reference) < 1e-5, `differ by ${maxAbsDiff(rotated, reference)}`);
    // Per-row positions give the same rotation as the shared positions.
    const positions = torch.tensor(
      BigInt64Array.from([2n, 3n, 4n, 5n, 6n, 2n, 3n, 4n, 5n, 6n]),
      [2, 5],
    );
    const [cosRows, sinRows] = rotary.forward(positions, 0, 5, 6);
    assert.ok(applyRotary(x, cosRows, sinRows).equal(rotated));
    rotary.dispose();
  });
});

test("rotary tables grow past their first size", () => {
  const rotary = new RotaryEmbedding(4, 10000, null, 64, "float32", "cpu");
  torch.tidy(() => {
    const [cos] = rotary.forward(null, 0, 1, 0);
    assert.deepEqual(cos.shape, [1, 4]);
    const [far] = rotary.forward(null, 1000, 2, 1001);
    assertClose(
      far.toFloat64Array(),
      [1000, 1001].flatMap((p) => [p, p * 0.01, p, p * 0.01].map(Math.cos)),
      2e-4,
    );
  });
  rotary.dispose();
});
