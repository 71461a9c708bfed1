import assert from "node:assert/strict";
import { test } from "node:test";

import {
  chooseByLabel,
  collatePairs,
  collateSequences,
  epochBatches,
  mixSeed,
  mulberry32,
  type PreferencePair,
  packPairs,
  packSequences,
  padIdFor,
  shuffledIndices,
  type TokenizedPair,
  type TokenizedSequence,
} from "../../src/data/index.js";
import { createByteTokenizer } from "../../src/tokenizer/index.js";

const PAD = 99;

function example(
  id: string,
  prompt: number[],
  a: number[],
  b: number[],
  labels: Partial<PreferencePair> = {},
): TokenizedPair {
  return {
    id,
    promptIds: Int32Array.from(prompt),
    responseIds: [Int32Array.from(a), Int32Array.from(b)],
    truncated: false,
    pair: { id, prompt: "", responses: ["", ""], meta: {}, ...labels },
  };
}

const EXAMPLES = [
  example("e0", [1, 2], [3], [4, 5, 6], { better: 0, safer: 1 }),
  example("e1", [7], [8, 9], [10], { better: 1, safer: 1 }),
];

test("padded pair batch puts chosen rows first", () => {
  const batch = collatePairs(EXAMPLES, { padId: PAD, choose: chooseByLabel("better") });
  assert.equal(batch.size, 2);
  assert.equal(batch.rows, 4);
  assert.equal(batch.seqLen, 5);
  assert.deepEqual(batch.ids, ["e0", "e1"]);
  assert.deepEqual([...batch.chosen], [0, 1]);
  assert.ok(batch.inputIds instanceof Int32Array);
  const rows = (values: ArrayLike<number>) =>
    Array.from({ length: 4 }, (_, r) => [...Array.from(values).slice(r * 5, r * 5 + 5)]);
  assert.deepEqual(rows(batch.inputIds), [
    [1, 2, 3, PAD, PAD], // e0 chosen (response 0)
    [7, 10, PAD, PAD, PAD], // e1 chosen (response 1)
    [1, 2, 4, 5, 6], // e0 rejected
    [7, 8, 9, PAD, PAD], // e1 rejected
  ]);
  assert.deepEqual(rows(batch.attentionMask), [
    [1, 1, 1, 0, 0],
    [1, 1, 0, 0, 0],
    [1, 1, 1, 1, 1],
    [1, 1, 1, 0, 0],
  ]);
  assert.deepEqual(rows(batch.lossMask), [
    [0, 0, 1, 0, 0],
    [0, 1, 0, 0, 0],
    [0, 0, 1, 1, 1],
    [0, 1, 1, 0, 0],
  ]);
  assert.deepEqual([...batch.promptLengths], [2, 1, 2, 1]);
  assert.deepEqual([...batch.lengths], [3, 2, 5, 3]);
  assert.deepEqual(
    batch.promptIds.map((ids) => [...ids]),
    [[1, 2], [7]],
  );
  assert.deepEqual(
    batch.chosenIds.map((ids) => [...ids]),
    [[3], [10]],
  );
  assert.deepEqual(
    batch.rejectedIds.map((ids) => [...ids]),
    [
      [4, 5, 6],
      [8, 9],
    ],
  );
  assert.equal(batch.examples[1], EXAMPLES[1]);
});

test("choice function and padding multiple", () => {
  const batch = collatePairs(EXAMPLES, {
    padId: 0,
    choose: chooseByLabel("safer"),
    padToMultipleOf: 4,
  });
  assert.equal(batch.seqLen, 8);
  assert.deepEqual([...batch.chosen], [1, 1]);
  assert.deepEqual([...batch.inputIds.subarray(0, 8)], [1, 2, 4, 5, 6, 0, 0, 0]);
  const custom = collatePairs(EXAMPLES, { padId: 0, choose: (e) => (e.id === "e0" ? 1 : 0) });
  assert.deepEqual([...custom.chosen], [1, 0]);
  assert.throws(
    () =>
      collatePairs([example("x", [1], [2], [3])], { padId: 0, choose: chooseByLabel("better") }),
    /Pair "x" has no "better" label/,
  );
  assert.throws(
    () => collatePairs(EXAMPLES, { padId: -1, choose: () => 0 }),
    /Expected a non-negative integer for padId but received -1 \(number\)/,
  );
});

test("packed pair batch matches the padded one", () => {
  const choose = chooseByLabel("better");
  const padded = collatePairs(EXAMPLES, { padId: PAD, choose });
  const packed = packPairs(EXAMPLES, { choose });
  assert.deepEqual([...packed.offsets], [0, 3, 5, 10, 13]);
  assert.deepEqual([...packed.inputIds], [1, 2, 3, 7, 10, 1, 2, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual([...packed.positionIds], [0, 1, 2, 0, 1, 0, 1, 2, 3, 4, 0, 1, 2]);
  assert.deepEqual([...packed.lossMask], [0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1]);
  for (let row = 0; row < padded.rows; row++) {
    const start = packed.offsets[row] as number;
    const length = padded.lengths[row] as number;
    const paddedRow = padded.inputIds.subarray(row * padded.seqLen, row * padded.seqLen + length);
    assert.deepEqual([...packed.inputIds.subarray(start, start + length)], [...paddedRow]);
  }
  assert.deepEqual(packed.ids, padded.ids);
  assert.deepEqual([...packed.chosen], [...padded.chosen]);
});

test("sequence batches for SFT and scoring", () => {
  const sequences: TokenizedSequence[] = [
    {
      id: "s0",
      promptIds: Int32Array.from([1, 2]),
      responseIds: Int32Array.from([3, 4]),
      truncated: false,
    },
    {
      id: "s1",
      promptIds: Int32Array.from([5]),
      responseIds: Int32Array.from([6]),
      truncated: false,
    },
  ];
  const batch = collateSequences(sequences, { padId: 0 });
  assert.equal(batch.seqLen, 4);
  assert.deepEqual([...batch.inputIds], [1, 2, 3, 4, 5, 6, 0, 0]);
  assert.deepEqual([...batch.attentionMask], [1, 1, 1, 1, 1, 1, 0, 0]);
  assert.deepEqual([...batch.lossMask], [0, 0, 1, 1, 0, 1, 0, 0]);
  assert.deepEqual([...batch.lengths], [4, 2]);
  const packed = packSequences(sequences);
  assert.deepEqual([...packed.offsets], [0, 4, 6]);
  assert.deepEqual([...packed.positionIds], [0, 1, 2, 3, 0, 1]);
  assert.deepEqual(packed.ids, ["s0", "s1"]);
});

test("padIdFor falls back to EOS", () => {
  assert.equal(padIdFor(createByteTokenizer()), 256);
  const noPad = { ...createByteTokenizer(), padId: null, eosId: 7 };
  assert.equal(padIdFor(noPad as never), 7);
  assert.equal(padIdFor({ padId: null, eosId: null } as never), 0);
});

test("shuffle order is a pure function of seed and epoch", () => {
  const a = shuffledIndices(100, 42, 3);
  assert.deepEqual([...a], [...shuffledIndices(100, 42, 3)]);
  assert.deepEqual(
    [...a].sort((x, y) => x - y),
    Array.from({ length: 100 }, (_, i) => i),
  );
  assert.notDeepEqual([...a], [...shuffledIndices(100, 42, 4)]);
  assert.notDeepEqual([...a], [...shuffledIndices(100, 43, 3)]);
  assert.deepEqual([...shuffledIndices(0, 1, 0)], []);
  assert.notEqual(mixSeed(1, 2), mixSeed(2, 1));
  const random = mulberry32(7);
  const values = Array.from({ length: 1000 }, random);
  assert.ok(values.every((v) => v >= 0 && v < 1));
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  assert.throws(() => shuffledIndices(3, 1.5, 0), /Expected an integer for seed but received 1\.5/);
});

test("epoch batches keep every item once", () => {
  const items = Array.from({ length: 10 }, (_, i) => `id${i}`);
  const batches = epochBatches(items, { batchSize: 4, seed: 1, epoch: 0 });
  assert.deepEqual(
    batches.map((b) => b.length),
    [4, 4, 2],
  );
  assert.deepEqual(batches.flat().sort(), [...items].sort());
  assert.deepEqual(batches, epochBatches(items, { batchSize: 4, seed: 1, epoch: 0 }));
  const dropped = epochBatches(items, { batchSize: 4, seed: 1, epoch: 0, dropLast: true });
  assert.deepEqual(dropped, batches.slice(0, 2));
  const ordered = epochBatches(items, { batchSize: 5, seed: 1, epoch: 0, shuffle: false });
  assert.deepEqual(ordered, [items.slice(0, 5), items.slice(5)]);
  assert.throws(
    () => epochBatches(items, { batchSize: 0, seed: 0, epoch: 0 }),
    /positive integer for batchSize/,
  );
});
