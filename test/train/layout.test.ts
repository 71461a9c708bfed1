import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { TokenizedPair } from "../../src/data/tokenize.js";
import * as torch from "../../src/tensor/index.js";
import { responseLogps, sequenceScores } from "../../src/train/forward.js";
import {
  type PrefixLayout,
  pairLayout,
  sequenceLayout,
  type TokenLayout,
} from "../../src/train/layout.js";
import { loadModelFolder } from "../../src/train/models.js";
import { requireShared } from "../helpers/shared.js";

function pair(id: string, prompt: number[], first: number[], second: number[]): TokenizedPair {
  return {
    id,
    promptIds: Int32Array.from(prompt),
    responseIds: [Int32Array.from(first), Int32Array.from(second)],
    truncated: false,
    pair: { id, prompt: "", responses: ["", ""], meta: {} },
  };
}

const PAIRS = [
  pair("a", [1, 10, 11, 12], [20, 21, 2], [30, 2]),
  pair("b", [1, 5], [40, 41, 42, 43, 2], [50, 51, 2]),
  pair("c", [1, 7, 8, 9, 10, 11], [60, 2], [61, 62, 63, 64, 65, 66, 2]),
];
const choose = (p: TokenizedPair) => (p.id === "b" ? 1 : 0) as 0 | 1;

describe("pair layouts", () => {
  test("shared-prompt mask and positions", () => {
    const layout = pairLayout([PAIRS[0]!], () => 0, 0, "shared-prompt").layout as TokenLayout;
    // prompt 4, chosen 3, rejected 2: row of 9 tokens
    assert.equal(layout.seqLen, 9);
    assert.deepEqual([...layout.positionIds], [0, 1, 2, 3, 4, 5, 6, 4, 5]);
    const row = (q: number) => [...layout.attentionMask.subarray(q * 9, q * 9 + 9)];
    assert.deepEqual(row(6), [1, 1, 1, 1, 1, 1, 1, 0, 0]); // last chosen token
    assert.deepEqual(row(8), [1, 1, 1, 1, 0, 0, 0, 1, 1]); // last rejected token skips chosen
    // chosen tokens predicted from positions 3, 4, 5; rejected from 3 and 7
    assert.deepEqual([...layout.sources], [3, 4, 5, 3, 7]);
    assert.deepEqual([...layout.targets], [20, 21, 2, 30, 2]);
    assert.deepEqual([...layout.segments], [0, 0, 0, 1, 1]);
    assert.deepEqual([...layout.lastPositions], [6, 8]);
  });

  test("prefix layout grids and sources", () => {
    const layout = pairLayout(PAIRS.slice(0, 2), choose, 0, "prefix").layout as PrefixLayout;
    // prompts [1 10 11 12] and [1 5 _ _]; responses: a0, b1 (chosen) then a1, b0 (rejected)
    assert.equal(layout.promptLen, 4);
    assert.equal(layout.responseLen, 5);
    assert.deepEqual([...layout.promptLengths], [4, 2]);
    assert.deepEqual([...layout.responseLengths], [3, 3, 2, 5]);
    assert.deepEqual([...layout.responsePositions.subarray(5, 10)], [2, 3, 4, 5, 6]);
    // pair b's chosen response [50, 51, 2]: token 0 from prompt position 1 (row 1), then row 1 of
    // the response grid, which starts at layout position 8 + 5
    const slot1 = [...layout.sources].filter((_, k) => layout.segments[k] === 1);
    assert.deepEqual(slot1, [5, 13, 14]);
    assert.deepEqual([...layout.lastPositions], [10, 15, 19, 27]);
    assert.equal(layout.realTokens, 4 + 2 + 3 + 3 + 2 + 5);
  });

  test("padded layout puts chosen rows first", () => {
    const layout = pairLayout(PAIRS, choose, 0, "padded").layout as TokenLayout;
    assert.equal(layout.rows, 6);
    assert.equal(layout.outputs, 6);
    // pair b chooses response 1: its chosen row holds [1, 5, 50, 51, 2]
    assert.deepEqual(
      [...layout.inputIds.subarray(1 * layout.seqLen, 1 * layout.seqLen + 5)],
      [1, 5, 50, 51, 2],
    );
    assert.deepEqual([...layout.tokensPerOutput], [3, 3, 2, 2, 5, 7]);
  });
});

/** Checks that both layouts give the same log-probabilities and scores with a real model. */
async function compareLayouts(dir: string): Promise<void> {
  const lm = await loadModelFolder(dir, "causal-lm", 0);
  const scorer = await loadModelFolder(dir, "score", 0);
  try {
    lm.train(false);
    scorer.train(false);
    torch.tidy(() => {
      const kinds = lm.supportsPrefix
        ? (["shared-prompt", "prefix"] as const)
        : (["shared-prompt"] as const);
      const padded = responseLogps(
        lm,
        pairLayout(PAIRS, choose, 0, "padded").layout,
      ).logps.toArray();
      const a = sequenceScores(scorer, pairLayout(PAIRS, choose, 0, "padded").layout).toArray();
      for (const kind of kinds) {
        const other = responseLogps(lm, pairLayout(PAIRS, choose, 0, kind).layout).logps.toArray();
        for (let i = 0; i < padded.length; i++) {
          const tolerance = 1e-4 * Math.max(1, Math.abs(padded[i]!));
          assert.ok(
            Math.abs(padded[i]! - other[i]!) < tolerance,
            `${kind} logp ${i}: ${padded[i]} vs ${other[i]}`,
          );
        }
        const b = sequenceScores(scorer, pairLayout(PAIRS, choose, 0, kind).layout).toArray();
        for (let i = 0; i < a.length; i++) {
          assert.ok(Math.abs(a[i]! - b[i]!) < 1e-4, `${kind} score ${i}: ${a[i]} vs ${b[i]}`);
        }
      }
      // The score of a single unpadded sequence, from the model's own forward.
      const own = (scorer.model as import("../../src/models/model.js").ScoreModel)
        .forward({ inputIds: torch.tensor([1, 10, 11, 12, 20, 21, 2], [1, 7], { dtype: "int64" }) })
        .scores.item();
      assert.ok(Math.abs(own - a[0]!) < 1e-4, `own forward ${own} vs layout ${a[0]}`);
      const single = sequenceScores(
        scorer,
        sequenceLayout(
          [
            {
              id: "s",
              promptIds: PAIRS[0]!.promptIds,
              responseIds: PAIRS[0]!.responseIds[0],
              truncated: false,
            },
          ],
          0,
        ),
      ).item();
      assert.ok(Math.abs(single - own) < 1e-4);
    });
  } finally {
    lm.dispose();
    scorer.dispose();
  }
}

describe("layouts on real checkpoints", () => {
  test("llama stories260K", async (t) => {
    const dir = requireShared(t, "models", "stories260K");
    if (!dir) return;
    await compareLayouts(dir);
  });

  test("gpt2 fake-gpt2", async (t) => {
    const dir = requireShared(t, "models", "fake-gpt2");
    if (!dir) return;
    await compareLayouts(dir);
  });
});
