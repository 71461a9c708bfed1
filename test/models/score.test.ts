import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import {
  createModel,
  loadModelWithReport,
  loadScoreModel,
  readSafetensorsHeader,
  type ScoreModel,
  saveModel,
} from "../../src/models/index.js";
import * as torch from "../../src/tensor/index.js";
import { requireShared } from "../helpers/shared.js";
import { assertClose, ids, tempDir, tinyGpt2Config, tinyLlamaConfig } from "./helpers.js";

const EOS = 2;

function scoreModel(overrides: Record<string, unknown> = {}): ScoreModel {
  // pad_token_id equals eos_token_id, as in many Llama reward models.
  const config = tinyLlamaConfig({
    architectures: ["LlamaForScore"],
    pad_token_id: EOS,
    ...overrides,
  });
  return createModel(config, { seed: 21 }) as ScoreModel;
}

/** The score of each sequence alone, without padding. */
function scoresAlone(model: ScoreModel, rows: number[][]): number[] {
  return rows.map((row) => torch.tidy(() => model.forward({ inputIds: ids([row]) }).scores.item()));
}

const ROWS = [
  [1, 7, 9, 12, 5, EOS], // ends with EOS, which is also the pad id
  [1, 30, 4, EOS],
  [1, 8],
];

for (const overrides of [{}, { architectures: ["GPT2ForScore"] }]) {
  const label = overrides.architectures ? "gpt2" : "llama";
  test(`${label} score is read at the last real token with either padding side`, () => {
    const model =
      label === "gpt2"
        ? (createModel(tinyGpt2Config({ architectures: ["GPT2ForScore"], pad_token_id: 0 }), {
            seed: 4,
          }) as ScoreModel)
        : scoreModel();
    model.eval();
    const rows = label === "gpt2" ? ROWS.map((r) => r.map((t) => t % 30)) : ROWS;
    const pad = label === "gpt2" ? 0 : EOS;
    const expected = scoresAlone(model, rows);
    const width = Math.max(...rows.map((r) => r.length));
    for (const side of ["left", "right"] as const) {
      torch.tidy(() => {
        const padded = rows.map((r) => {
          const fill = new Array(width - r.length).fill(pad);
          return side === "left" ? [...fill, ...r] : [...r, ...fill];
        });
        const mask = rows.map((r) => {
          const fill = new Array(width - r.length).fill(0);
          const ones = new Array(r.length).fill(1);
          return side === "left" ? [...fill, ...ones] : [...ones, ...fill];
        });
        const out = model.forward({
          inputIds: ids(padded),
          attentionMask: ids(mask),
          returnTokenScores: true,
        });
        assert.deepEqual(out.scores.shape, [3]);
        assert.equal(out.scores.dtype, "float32");
        assertClose(out.scores.toFloat32Array(), expected, 1e-5, `${side} padding`);
        const ends =
          side === "left" ? [width - 1, width - 1, width - 1] : rows.map((r) => r.length - 1);
        assert.deepEqual(out.endIndices.toArray(), ends);
        // The per-token scores at the end positions are the sequence scores.
        const picked = out.tokenScores!.gather(1, out.endIndices.unsqueeze(1)).squeeze(1);
        assertClose(picked.toFloat32Array(), expected, 1e-5, "token scores");
      });
    }
    model.dispose();
  });
}

test("score head names follow the architecture", async () => {
  const safeRlhf = scoreModel({ bias: true });
  assert.deepEqual(
    safeRlhf
      .namedParameters()
      .slice(-2)
      .map(([name]) => name),
    ["score_head.weight", "score_head.bias"],
  );
  const classifier = scoreModel({
    architectures: ["LlamaForSequenceClassification"],
    num_labels: 1,
  });
  assert.equal(classifier.namedParameters().at(-1)![0], "score.weight");
  assert.equal(
    classifier.namedParameters().some(([name]) => name === "score.bias"),
    false,
  );

  for (const model of [safeRlhf, classifier]) {
    const dir = await tempDir("score");
    await saveModel(model, dir);
    const config = JSON.parse(await fs.readFile(path.join(dir, "config.json"), "utf8"));
    assert.deepEqual(config.architectures, [model.config.architecture]);
    const reloaded = await loadScoreModel(dir);
    torch.tidy(() => {
      const input = ids([[1, 5, 9, 3]]);
      assert.ok(
        model
          .forward({ inputIds: input })
          .scores.equal(reloaded.forward({ inputIds: input }).scores),
      );
    });
    reloaded.dispose();
    model.dispose();
    await fs.rm(dir, { recursive: true });
  }
  assert.throws(
    () => scoreModel({ architectures: ["LlamaForSequenceClassification"], num_labels: 2 }),
    /needs num_labels 1 to be used as a score model, found 2/,
  );
});

test("causal LM checkpoint loads as a score model with a new head", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  if (!dir) return;
  const { model, report } = await loadModelWithReport(dir, { task: "score", seed: 3 });
  assert.equal(model.config.architecture, "LlamaForScore");
  assert.deepEqual(report.initialized, ["score_head.weight"]);
  assert.deepEqual(report.unexpected, []);
  const head = model.getParameter("score_head.weight");
  assert.deepEqual(head.shape, [1, 64]);
  const std = torch.tidy(() => head.std().item());
  assert.ok(std > 0.01 && std < 0.03, `head std ${std}, initializer_range 0.02`);
  const out = await tempDir("score-from-lm");
  await saveModel(model, out);
  const header = await readSafetensorsHeader(path.join(out, "model.safetensors"));
  assert.ok(header.tensors.has("score_head.weight"));
  assert.ok(header.tensors.has("model.embed_tokens.weight"));
  assert.ok(!header.tensors.has("lm_head.weight"));
  model.dispose();
  await fs.rm(out, { recursive: true });
});
