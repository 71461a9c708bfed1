import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import * as torch from "../../src/tensor/index.js";
import {
  costModelLoss,
  type DpoLossType,
  dpoLoss,
  rewardModelLoss,
} from "../../src/train/losses.js";
import { PROJECT_ROOT } from "../helpers/shared.js";

interface FixtureCase {
  lossType: DpoLossType;
  beta: number;
  labelSmoothing: number;
  targets: number[] | null;
  loss: number;
  losses: number[];
  chosenRewards: number[];
  rejectedRewards: number[];
  policyChosen: number[];
  policyRejected: number[];
  gradWeight: number[];
}

interface Fixture {
  shapes: { B: number; T: number; D: number; V: number };
  x: number[];
  weight: number[];
  tokens: number[];
  mask: number[];
  refLogps: number[];
  cases: FixtureCase[];
}

const fixture = JSON.parse(
  readFileSync(join(PROJECT_ROOT, "test", "fixtures", "dpo", "losses.json"), "utf8"),
) as Fixture;

function assertClose(actual: number[], expected: number[], what: string, tol = 1e-5): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const bound = tol * Math.max(1, Math.abs(e));
    assert.ok(Math.abs(a - e) <= bound, `${what}[${i}]: got ${a}, expected ${e} (tol ${bound})`);
  }
}

describe("dpoLoss against PyTorch", () => {
  const { B, T, D, V } = fixture.shapes;
  for (const c of fixture.cases) {
    const name = `${c.lossType} beta=${c.beta} eps=${c.labelSmoothing} ${c.targets ? "soft" : "hard"}`;
    test(name, () => {
      torch.tidy(() => {
        // The fixture's "model": one linear layer over fixed inputs, log-probs summed over the
        // response mask; chosen rows first, then rejected, in one batch.
        const weight = torch.tensor(fixture.weight, [D, V]).requiresGrad_(true);
        const x = torch.tensor(fixture.x, [2 * B, T, D]);
        const tokens = torch.tensor(fixture.tokens, [2 * B, T, 1], { dtype: "int64" });
        const mask = torch.tensor(fixture.mask, [2 * B, T]);
        const logp = x.matmul(weight).logSoftmax(-1).gather(-1, tokens).squeeze(-1);
        const seq = logp.mul(mask).sum(-1);
        const [policyChosen, policyRejected] = seq.split(B, 0) as [torch.Tensor, torch.Tensor];
        const ref = torch.tensor(fixture.refLogps);
        const [refChosen, refRejected] = ref.split(B, 0) as [torch.Tensor, torch.Tensor];

        const out = dpoLoss({
          policyChosen,
          policyRejected,
          refChosen,
          refRejected,
          beta: c.beta,
          lossType: c.lossType,
          labelSmoothing: c.labelSmoothing,
          ...(c.targets ? { targets: torch.tensor(c.targets) } : {}),
        });
        out.loss.backward();

        assertClose(policyChosen.toArray(), c.policyChosen, "policyChosen");
        assertClose([out.loss.item()], [c.loss], "loss");
        assertClose(out.losses.toArray(), c.losses, "losses");
        assertClose(out.chosenRewards.toArray(), c.chosenRewards, "chosenRewards");
        assertClose(out.rejectedRewards.toArray(), c.rejectedRewards, "rejectedRewards");
        assert.equal(out.chosenRewards.requiresGrad, false);
        assertClose(weight.grad!.toArray(), c.gradWeight, "grad W");
      });
    });
  }
});

describe("dpoLoss", () => {
  const vec = (values: number[]) => torch.tensor(values);

  test("sigmoid at equal policy and reference is ln 2", () => {
    const out = dpoLoss({
      policyChosen: vec([-3, -4]),
      policyRejected: vec([-5, -1]),
      refChosen: vec([-3, -4]),
      refRejected: vec([-5, -1]),
      beta: 0.1,
    });
    assertClose([out.loss.item()], [Math.LN2], "loss");
  });

  test("soft target 1/2 makes sigmoid symmetric", () => {
    const args = { refChosen: vec([0]), refRejected: vec([0]), beta: 1, targets: vec([0.5]) };
    const a = dpoLoss({ ...args, policyChosen: vec([2]), policyRejected: vec([0]) });
    const b = dpoLoss({ ...args, policyChosen: vec([0]), policyRejected: vec([2]) });
    assertClose([a.loss.item()], [b.loss.item()], "loss");
  });

  test("unknown loss type lists valid names", () => {
    assert.throws(
      () =>
        dpoLoss({
          policyChosen: vec([0]),
          policyRejected: vec([0]),
          refChosen: vec([0]),
          refRejected: vec([0]),
          beta: 0.1,
          lossType: "kto" as DpoLossType,
        }),
      {
        name: "RangeError",
        message:
          'Expected one of "sigmoid", "ipo", "hinge", "robust" for lossType but received "kto" (string)',
      },
    );
  });

  test("mismatched batch sizes are rejected", () => {
    assert.throws(
      () =>
        dpoLoss({
          policyChosen: vec([0, 1]),
          policyRejected: vec([0]),
          refChosen: vec([0, 1]),
          refRejected: vec([0, 1]),
          beta: 0.1,
        }),
      /Expected shape \[2\] like policyChosen for policyRejected but received \[1\]/,
    );
  });

  test("label smoothing of 0.5 is rejected", () => {
    assert.throws(
      () =>
        dpoLoss({
          policyChosen: vec([0]),
          policyRejected: vec([0]),
          refChosen: vec([0]),
          refRejected: vec([0]),
          beta: 0.1,
          labelSmoothing: 0.5,
        }),
      /labelSmoothing/,
    );
  });

  test("intermediates are freed", () => {
    const inputs = [vec([-1, -2]), vec([-3, -2]), vec([-1, -1]), vec([-2, -2])] as const;
    const before = torch.liveTensors();
    const out = dpoLoss({
      policyChosen: inputs[0],
      policyRejected: inputs[1],
      refChosen: inputs[2],
      refRejected: inputs[3],
      beta: 0.1,
      lossType: "robust",
      labelSmoothing: 0.1,
    });
    assert.equal(torch.liveTensors(), before + 4);
    torch.dispose(out);
    assert.equal(torch.liveTensors(), before);
  });
});

describe("reward and cost losses", () => {
  test("Bradley-Terry loss and accuracy", () => {
    const better = torch.tensor([1, 0.5, -1]);
    const worse = torch.tensor([0, 1, -2]);
    const out = rewardModelLoss({ better, worse, regularization: 0.01 });
    const diffs = [1, -0.5, 1];
    const bt = diffs.reduce((s, d) => s + Math.log1p(Math.exp(-d)), 0) / 3;
    const reg = (0.01 * (1 + 0.25 + 1 + 0 + 1 + 4)) / 6;
    assertClose([out.loss.item()], [bt + reg], "loss");
    assertClose([out.accuracy.item()], [2 / 3], "accuracy");
  });

  test("Safe-RLHF cost loss, accuracy and sign accuracy", () => {
    const safer = torch.tensor([-1, 0.5]);
    const unsafer = torch.tensor([2, 0.2]);
    const saferIsSafe = torch.tensor([1, 1]);
    const unsaferIsSafe = torch.tensor([0, 1]);
    const out = costModelLoss({ safer, unsafer, saferIsSafe, unsaferIsSafe });
    const softplus = (v: number) => Math.log1p(Math.exp(-v)); // −log σ(v)
    const order = (softplus(3) + softplus(-0.3)) / 2;
    // signs: safer safe → −1, unsafer: unsafe → +1 then safe → −1
    const unsaferTerm = (softplus(2) + softplus(-0.2)) / 2;
    const saferTerm = (softplus(1) + softplus(-0.5)) / 2;
    assertClose([out.loss.item()], [order + unsaferTerm + saferTerm], "loss");
    assertClose([out.accuracy.item()], [0.5], "accuracy");
    // costs -1 (safe ✓), 0.5 (safe ✗), 2 (unsafe ✓), 0.2 (safe ✗)
    assertClose([out.signAccuracy.item()], [0.5], "signAccuracy");
  });
});
