import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import {
  type CausalLM,
  createModel,
  loadCausalLM,
  loadModelWithReport,
  readSafetensorsHeader,
  saveModel,
} from "../../src/models/index.js";
import * as torch from "../../src/tensor/index.js";
import { requireShared } from "../helpers/shared.js";
import { assertClose, ids, maxAbsDiff, tempDir, tinyGpt2Config } from "./helpers.js";

// Reference values from test/models/reference/gpt2_logits.py, a plain PyTorch GPT-2:
//   gpt2_logits.py fake-gpt2 464,2068,7586,21831,50256 0,1,464,7586,50256
//   gpt2_logits.py tiny-gpt2 1,5,7,20,3 0,1,5,7,20
const REFERENCE = {
  "fake-gpt2": {
    input: [464, 2068, 7586, 21831, 50256],
    columns: [0, 1, 464, 7586, 50256],
    logits: [
      [
        -0.01536918890139738, -0.0074854062680753675, 0.034063591542574434, 0.030464521108557907,
        -0.0361211009151432,
      ],
      [
        0.015693341998677668, 0.007643278650065977, -0.03478202506268335, -0.03110704627870642,
        0.03688293034716783,
      ],
      [
        0.007250976309825519, 0.003531512435381412, -0.01607074132192654, -0.014372748370267585,
        0.01704144688918352,
      ],
      [
        0.011507314168386351, 0.005604517425940259, -0.025504299201706715, -0.022809580929910922,
        0.027044810913528394,
      ],
      [
        0.01548915953120844, 0.0075438352101714345, -0.03432948661728463, -0.03070232213613,
        0.03640305712559899,
      ],
    ],
    logsumexp: [
      10.825156170291255, 10.825443418092902, 10.825054053535823, 10.825221315749667,
      10.825431259470383,
    ],
  },
  "tiny-gpt2": {
    input: [1, 5, 7, 20, 3],
    columns: [0, 1, 5, 7, 20],
    logits: [
      [
        0.03646942592820002, 0.024835250382555518, -0.01732204416526495, 0.013563208008069427,
        0.01659933344019815,
      ],
      [
        0.0318517704892656, 0.02169068372719596, -0.015128776723032977, 0.011845871560373422,
        0.01449757192366824,
      ],
      [
        0.032044325889468706, 0.021821809270372583, -0.015220234872803662, 0.011917485577450648,
        0.014585215883378133,
      ],
      [
        -0.03372690485370672, -0.02296760882040838, 0.01601941165972523, -0.012543257437506838,
        -0.015351060800787075,
      ],
      [
        0.029041752586776104, 0.019777121196516756, -0.013794098241937891, 0.01080079226600894,
        0.013218561010216678,
      ],
    ],
    logsumexp: [
      3.037544204299901, 3.0383596085542757, 3.038325213478846, 3.05208364599068,
      3.0388654417991927,
    ],
  },
} as const;

for (const name of ["fake-gpt2", "tiny-gpt2"] as const) {
  test(`${name} logits match the PyTorch reference`, async (t) => {
    const dir = requireShared(t, "models", name);
    if (!dir) return;
    const reference = REFERENCE[name];
    const { model, report } = await loadModelWithReport(dir);
    assert.deepEqual(report.unexpected, []);
    assert.equal(model.config.modelType, "gpt2");
    const { logits, lse } = torch.inferenceMode(() =>
      torch.tidy(() => {
        const out = (model as CausalLM).forward({ inputIds: ids([[...reference.input]]) }).logits!; // [1, 5, V]
        const columns = torch.tensor(BigInt64Array.from(reference.columns, BigInt));
        return {
          logits: out.select(0, 0).indexSelect(1, columns).toFloat64Array(),
          lse: out.select(0, 0).logsumexp(-1).toFloat64Array(),
        };
      }),
    );
    assertClose(logits, reference.logits.flat(), 1e-6, "logits");
    assertClose(lse, reference.logsumexp, 1e-5, "logsumexp");
    model.dispose();
  });

  test(`${name} saves and reloads with identical logits`, async (t) => {
    const dir = requireShared(t, "models", name);
    if (!dir) return;
    const model = await loadCausalLM(dir);
    const out = await tempDir(name);
    await saveModel(model, out);
    const config = JSON.parse(await fs.readFile(path.join(out, "config.json"), "utf8"));
    // GPT2Model folders are saved as GPT2LMHeadModel, whose names carry `transformer.`.
    assert.deepEqual(config.architectures, ["GPT2LMHeadModel"]);
    assert.equal(config.model_type, "gpt2");
    const header = await readSafetensorsHeader(path.join(out, "model.safetensors"));
    assert.ok(header.tensors.has("transformer.h.0.attn.c_attn.weight"));
    assert.deepEqual(header.tensors.get("transformer.h.0.attn.c_attn.weight")!.shape, [2, 6]);
    assert.ok(!header.tensors.has("lm_head.weight"), "the tied head is not stored twice");
    const reloaded = await loadCausalLM(out);
    const input = ids([[1, 5, 7, 20, 3, 0]]);
    const [a, b] = torch.inferenceMode(() => [
      model.forward({ inputIds: input }).logits!,
      reloaded.forward({ inputIds: input }).logits!,
    ]);
    assert.ok(a!.equal(b!), "logits differ after save and reload");
    torch.dispose([input, a, b]);
    model.dispose();
    reloaded.dispose();
    await fs.rm(out, { recursive: true });
  });
}

test("gpt2 kv cache and left padding match the full forward", () => {
  const model = createModel(tinyGpt2Config(), { seed: 1 }) as CausalLM;
  model.eval();
  torch.inferenceMode(() =>
    torch.tidy(() => {
      const input = ids([[3, 7, 1, 9, 12, 4, 28, 2]]);
      const full = model.forward({ inputIds: input }).logits!; // [1, 8, V]
      const cache = model.createCache(1, 4);
      const pieces = [model.forward({ inputIds: input.narrow(1, 0, 3), cache }).logits!];
      for (let t = 3; t < 8; t++)
        pieces.push(model.forward({ inputIds: input.narrow(1, t, 1), cache }).logits!);
      cache.dispose();
      assert.ok(maxAbsDiff(full, torch.cat(pieces, 1)) <= 1e-5);

      const padded = ids([[0, 0, 3, 7, 1, 9, 12, 4, 28, 2]]);
      const mask = ids([[0, 0, 1, 1, 1, 1, 1, 1, 1, 1]]);
      const logits = model.forward({ inputIds: padded, attentionMask: mask }).logits!;
      assert.ok(
        maxAbsDiff(logits.narrow(1, 2, 8), full) <= 1e-5,
        "learned positions must skip padding",
      );
    }),
  );
  model.dispose();
});

test("gpt2 init scales the output projections", () => {
  const model = createModel(tinyGpt2Config({ n_embd: 64, n_head: 4, n_layer: 8 }), { seed: 2 });
  const std = (name: string) => torch.tidy(() => model.getParameter(name).std().item());
  assert.ok(Math.abs(std("transformer.h.0.attn.c_attn.weight") - 0.02) < 0.002);
  assert.ok(Math.abs(std("transformer.h.0.mlp.c_proj.weight") - 0.02 / 4) < 0.0005);
  assert.ok(Math.abs(std("transformer.h.3.attn.c_proj.weight") - 0.02 / 4) < 0.0005);
  assert.deepEqual(model.getParameter("transformer.h.0.mlp.c_fc.weight").shape, [64, 256]);
  model.dispose();
});

test("gpt2 dropout acts in training mode only", () => {
  const model = createModel(
    tinyGpt2Config({ resid_pdrop: 0.5, embd_pdrop: 0.5, attn_pdrop: 0.5 }),
    {
      seed: 3,
    },
  ) as CausalLM;
  torch.tidy(() => {
    const input = ids([[3, 7, 1, 9]]);
    model.eval();
    const a = model.forward({ inputIds: input }).logits!;
    const b = model.forward({ inputIds: input }).logits!;
    assert.ok(a.equal(b));
    model.train();
    const c = model.forward({ inputIds: input }).logits!;
    assert.ok(!a.equal(c));
  });
  model.dispose();
});

test("gpt2 rejects positions past n_positions", () => {
  const model = createModel(tinyGpt2Config({ n_positions: 4 }), { seed: 0 }) as CausalLM;
  assert.throws(
    () => torch.tidy(() => model.forward({ inputIds: ids([[1, 2, 3, 4, 5]]) })),
    /GPT-2 has 4 learned positions \(n_positions\) but this pass needs position 4/,
  );
  model.dispose();
});
