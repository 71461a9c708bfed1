import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  candidatePairs,
  type ExactProblem,
  expectedScores,
  klDivergence,
  lagrangianPolicy,
  maxTotalVariation,
  referencePolicy,
  runExactDualLoop,
  solveOptimalLambdas,
  totalVariation,
} from "../../src/cdpo/exact.js";
import { lagrangianReward } from "../../src/cdpo/relabel.js";

// Four prompts with four candidates each. Candidate scores are chosen so that the unconstrained
// optimum (λ = 0) violates the limit and the constraint binds at a λ* of order one.
const PROMPTS = [
  { refLogits: [0, 0, 0, 0], reward: [1.0, 0.5, -0.5, 0.2], cost: [1.0, 0.2, -1.0, -0.5] },
  { refLogits: [0.5, 0, -0.5, 0], reward: [0.8, 0.9, -0.2, 0.0], cost: [0.5, 1.0, -0.8, -1.0] },
  { refLogits: [0, 1, 0, -1], reward: [0.3, 1.2, 0.1, -0.4], cost: [-0.5, 0.8, -0.3, -1.0] },
  { refLogits: [0, 0, 0.3, 0], reward: [-0.1, 0.6, 0.4, 1.1], cost: [-1.0, -0.2, 0.3, 1.2] },
];
// A second cost per candidate, for the two-constraint case.
const SECOND_COST = [
  [0.5, 1, 0, -0.2],
  [0, 0.3, 1, -1],
  [1, 0, -1, 0.5],
  [0.2, -0.5, 0.5, 0.8],
];

function problem(limit: number, beta = 0.5): ExactProblem {
  return {
    beta,
    constraints: [{ name: "harm", limit }],
    prompts: PROMPTS.map((p) => ({ refLogits: p.refLogits, reward: p.reward, costs: [p.cost] })),
  };
}

function twoConstraintProblem(): ExactProblem {
  return {
    beta: 0.5,
    constraints: [
      { name: "harm", limit: -0.2 },
      { name: "privacy", limit: 0 },
    ],
    prompts: PROMPTS.map((p, x) => ({
      refLogits: p.refLogits,
      reward: p.reward,
      costs: [p.cost, SECOND_COST[x] as number[]],
    })),
  };
}

// Tolerances the dual loop must meet with soft labels and the exact cost estimate.
const lambdaTolerance = (lambdaStar: number) => 0.05 * Math.max(1, lambdaStar);
const TV_TOLERANCE = 0.02;

describe("closed form", () => {
  test("lambda star meets the limit", () => {
    const p = problem(-0.2);
    const star = solveOptimalLambdas(p);
    assert.ok(star.feasible);
    assert.ok((star.lambdas[0] as number) > 0.5, `λ* = ${star.lambdas[0]}`);
    assert.ok(Math.abs((star.costs[0] as number) + 0.2) < 1e-8, `E[c] = ${star.costs[0]}`);
    // The unconstrained optimum violates the limit, so the constraint binds.
    assert.ok((expectedScores(p, lagrangianPolicy(p, [0])).costs[0] as number) > -0.2);
  });

  test("lambda star is zero when slack", () => {
    const p = problem(2);
    const star = solveOptimalLambdas(p);
    assert.deepEqual(star.lambdas, [0]);
    assert.ok(totalVariation(star.policy, lagrangianPolicy(p, [0])) < 1e-12);
  });

  test("infeasible limit is reported", () => {
    const star = solveOptimalLambdas(problem(-5), { lambdaMax: 50 });
    assert.equal(star.feasible, false);
    assert.deepEqual(star.lambdas, [50]);
  });

  test("closed form is proportional to reference times exp", () => {
    const p = problem(-0.2);
    const lambda = 0.7;
    const policy = lagrangianPolicy(p, [lambda]);
    const ref = referencePolicy(p);
    for (const [x, prompt] of p.prompts.entries()) {
      // π(y)/π_ref(y) / exp(r_λ(y)/β) is the same constant for every candidate y.
      const ratios = prompt.reward.map((r, y) => {
        const rl = lagrangianReward(r, [(prompt.costs[0] as number[])[y] as number], [lambda]);
        return (
          ((policy[x] as number[])[y] as number) /
          ((ref[x] as number[])[y] as number) /
          Math.exp(rl / p.beta)
        );
      });
      for (const ratio of ratios) assert.ok(Math.abs(ratio / (ratios[0] as number) - 1) < 1e-9);
    }
  });

  test("two constraints solved jointly", () => {
    const p = twoConstraintProblem();
    const star = solveOptimalLambdas(p);
    assert.ok(star.feasible);
    for (const [j, constraint] of p.constraints.entries()) {
      const lambda = star.lambdas[j] as number;
      const cost = star.costs[j] as number;
      // KKT: either the constraint binds or its multiplier is zero and the cost is below the limit.
      if (lambda > 1e-9) assert.ok(Math.abs(cost - constraint.limit) < 1e-6, `cost ${j} = ${cost}`);
      else assert.ok(cost <= constraint.limit + 1e-9);
    }
    assert.ok((star.lambdas[0] as number) > 0.5);
    assert.ok((star.lambdas[1] as number) > 0.01);
  });
});

describe("candidate pairs", () => {
  test("one order gives M choose 2 per prompt", () => {
    const pairs = candidatePairs(problem(0));
    assert.equal(pairs.length, 4 * 6);
    assert.deepEqual(pairs[0]?.reward, [1.0, 0.5]);
    assert.deepEqual(pairs[0]?.costs, [[1.0, 0.2]]);
    assert.equal(pairs[0]?.id, "0:0-1");
  });

  test("both orders doubles the pairs", () => {
    assert.equal(candidatePairs(problem(0), "both").length, 4 * 12);
  });
});

describe("dual loop with soft labels", () => {
  test("converges to lambda star and the optimal policy", async () => {
    const p = problem(-0.2);
    const star = solveOptimalLambdas(p);
    const result = await runExactDualLoop(p, { labelMode: "soft" });
    const lambdaStar = star.lambdas[0] as number;
    const lambda = result.lambdas[0] as number;
    assert.equal(result.state.finished, "settled");
    assert.ok(
      Math.abs(lambda - lambdaStar) < lambdaTolerance(lambdaStar),
      `λ = ${lambda}, λ* = ${lambdaStar}`,
    );
    const tv = totalVariation(result.policy, star.policy);
    assert.ok(tv < TV_TOLERANCE, `TV = ${tv}`);
    assert.ok(maxTotalVariation(result.policy, star.policy) < TV_TOLERANCE);
    // The recorded trajectory starts at λ = 0 and each record's λ is the previous record's next λ.
    assert.equal(result.records[0]?.constraints[0]?.lambda, 0);
    for (let i = 1; i < result.records.length; i++) {
      assert.equal(
        result.records[i]?.constraints[0]?.lambda,
        result.records[i - 1]?.constraints[0]?.lambda_next,
      );
    }
    const final = expectedScores(p, result.policy).costs[0] as number;
    assert.ok(Math.abs(final + 0.2) < 0.01, `E[c] = ${final}`);
  });

  test("restart from reference reaches the same optimum", async () => {
    const p = problem(-0.2);
    const star = solveOptimalLambdas(p);
    const result = await runExactDualLoop(p, { restartFromReference: true });
    const lambdaStar = star.lambdas[0] as number;
    assert.ok(Math.abs((result.lambdas[0] as number) - lambdaStar) < lambdaTolerance(lambdaStar));
    assert.ok(totalVariation(result.policy, star.policy) < TV_TOLERANCE);
  });

  test("slack limit keeps lambda at zero", async () => {
    const p = problem(2);
    const result = await runExactDualLoop(p, { iterations: 5 });
    assert.deepEqual(result.lambdas, [0]);
    assert.ok(totalVariation(result.policy, lagrangianPolicy(p, [0])) < TV_TOLERANCE);
  });

  test("two constraints converge jointly", async () => {
    const p = twoConstraintProblem();
    const star = solveOptimalLambdas(p);
    const result = await runExactDualLoop(p);
    for (const [j, lambdaStar] of star.lambdas.entries()) {
      const lambda = result.lambdas[j] as number;
      assert.ok(
        Math.abs(lambda - lambdaStar) < lambdaTolerance(lambdaStar),
        `λ${j} = ${lambda} vs ${lambdaStar}`,
      );
    }
    assert.ok(totalVariation(result.policy, star.policy) < TV_TOLERANCE);
  });

  test("adam on lambda converges", async () => {
    const p = problem(-0.2);
    const star = solveOptimalLambdas(p);
    const result = await runExactDualLoop(p, {
      dual: { optimizer: "adam", lr: 0.2 },
      iterations: 100,
    });
    const lambdaStar = star.lambdas[0] as number;
    assert.ok(Math.abs((result.lambdas[0] as number) - lambdaStar) < lambdaTolerance(lambdaStar));
    assert.ok(totalVariation(result.policy, star.policy) < TV_TOLERANCE);
  });

  test("sampled cost estimate hovers near lambda star", async () => {
    // With K = 64 samples per prompt the cost estimate has an SE near 0.1, so λ keeps moving;
    // its average over the last 15 iterations lands within 0.1·max(1, λ*).
    const p = problem(-0.2);
    const star = solveOptimalLambdas(p);
    const result = await runExactDualLoop(p, {
      costEstimate: "sampled",
      samplesPerPrompt: 64,
      iterations: 40,
      dual: { lr: 0.3 },
      stop: { window: 100 },
      seed: 1,
    });
    const last = result.records.slice(-15).map((r) => r.constraints[0]?.lambda_next as number);
    const mean = last.reduce((a, b) => a + b, 0) / last.length;
    const lambdaStar = star.lambdas[0] as number;
    assert.ok(Math.abs(mean - lambdaStar) < 0.1 * Math.max(1, lambdaStar), `mean λ = ${mean}`);
    const record = result.records.at(-1);
    assert.equal(record?.n_samples, 4 * 64);
    assert.ok((record?.constraints[0]?.cost_se as number) > 0);
  });
});

describe("dual loop with hard labels", () => {
  // Hard labels ask DPO for P(winner) = 1, which no finite log-ratio attains, so every phase
  // pushes each prompt's policy further toward the single candidate with the largest r_λ. The
  // loop ends with a nearly deterministic policy, far from π_λ*, and λ jumps between the
  // points where some prompt's best candidate changes instead of settling at λ*.
  test("ends deterministic and far from the optimum", async () => {
    const p = problem(-0.2);
    const star = solveOptimalLambdas(p);
    const result = await runExactDualLoop(p, { labelMode: "hard", iterations: 40 });
    assert.equal(result.state.finished, "budget");
    for (const [x, row] of result.policy.entries()) {
      const best = Math.max(...row);
      assert.ok(best > 0.95, `prompt ${x}: max π = ${best}`);
    }
    const tv = totalVariation(result.policy, star.policy);
    assert.ok(tv > 0.4, `TV = ${tv}`);
    // Far from the reference too: the soft-label optimum has KL(π_λ* ‖ π_ref) under 0.5 nats.
    const ref = referencePolicy(p);
    assert.ok(klDivergence(star.policy, ref) < 0.5);
    assert.ok(klDivergence(result.policy, ref) > 1);
    // λ does not settle: its range over the last 20 iterations stays wide.
    const tail = result.records.slice(-20).map((r) => r.constraints[0]?.lambda_next as number);
    assert.ok(Math.max(...tail) - Math.min(...tail) > 0.1);
  });
});
