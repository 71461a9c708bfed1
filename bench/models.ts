/**
 * Model benchmarks on a ~28M-parameter Llama (hidden 512, 6 layers, 8 heads, MLP 1408, vocabulary
 * 8192, untied head):
 *
 * - generate-kv-b1 / generate-kv-b8: greedy decoding with the KV cache, 32 new tokens after a
 *   16-token prompt, batch 1 and 8 (new tokens per second, all rows counted).
 * - llama-fwd-bwd: forward, cross-entropy and backward over one 256-token sequence (tokens/s).
 *
 * bench/py/models.py runs the same model, written op for op the same way, in PyTorch with the
 * same weights (same seed and draw order), prompts and thread count. It also returns its greedy
 * tokens, which must equal cdpo's.
 */
import { type CausalLM, createModel, generate } from "../src/models/index.js";
import * as torch from "../src/tensor/index.js";
import { report, runPytorch, timeIt } from "./common.js";

export const LLAMA_25M = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  vocab_size: 8192,
  hidden_size: 512,
  intermediate_size: 1408,
  num_hidden_layers: 6,
  num_attention_heads: 8,
  num_key_value_heads: 8,
  max_position_embeddings: 1024,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  initializer_range: 0.02,
  tie_word_embeddings: false,
};

const GENERATION = { promptLength: 16, newTokens: 32 };
const TRAINING = { batch: 1, seq: 256 };

interface PytorchResults {
  "generate-kv-b1": number;
  "generate-kv-b8": number;
  "llama-fwd-bwd": number;
  greedy: number[][];
}

function randomTokens(rows: number, length: number, seed: number): number[][] {
  return torch.tidy(() => {
    const flat = torch
      .randint(0, LLAMA_25M.vocab_size, [rows, length], { generator: new torch.Generator(seed) })
      .toArray();
    return Array.from({ length: rows }, (_, r) => flat.slice(r * length, (r + 1) * length));
  });
}

function generationRate(
  model: CausalLM,
  prompts: number[][],
): { rate: number; tokens: number[][] } {
  const options = { greedy: true, maxNewTokens: GENERATION.newTokens, stopTokenIds: [] };
  let tokens: number[][] = [];
  const seconds = timeIt(
    () => {
      tokens = generate(model, prompts, options).tokens;
    },
    { warmup: 1, minSeconds: 2, minRuns: 3 },
  );
  return { rate: (prompts.length * GENERATION.newTokens) / seconds, tokens };
}

function trainingRate(model: CausalLM, sequence: number[][]): number {
  const { batch, seq } = TRAINING;
  const vocab = LLAMA_25M.vocab_size;
  const input = torch.keep(torch.tensor(BigInt64Array.from(sequence.flat(), BigInt), [batch, seq]));
  const parameters = model.parameters();
  model.train();
  const seconds = timeIt(
    () =>
      torch.tidy(() => {
        const logits = model.forward({ inputIds: input }).logits!; // [B, T, V]
        const loss = torch.crossEntropy(
          logits.narrow(1, 0, seq - 1).reshape(batch * (seq - 1), vocab),
          input.narrow(1, 1, seq - 1).reshape(batch * (seq - 1)),
        );
        loss.backward();
        torch.zeroGrad(parameters);
      }),
    { warmup: 1, minSeconds: 3, minRuns: 3 },
  );
  model.eval();
  input.dispose();
  return (batch * seq) / seconds;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Measures both sides in alternating rounds (PyTorch, then cdpo, `CDPO_BENCH_ROUNDS` times, 3 by
 * default) and reports each side's median, so that a load change on a shared machine hits both.
 */
export async function run(): Promise<void> {
  const rounds = Math.max(1, Number(process.env.CDPO_BENCH_ROUNDS ?? 3));
  const model = createModel(LLAMA_25M, { seed: 0 }) as CausalLM;
  model.eval();
  const prompts1 = randomTokens(1, GENERATION.promptLength, 1);
  const prompts8 = randomTokens(8, GENERATION.promptLength, 2);
  const sequence = randomTokens(TRAINING.batch, TRAINING.seq, 3);

  const ours = { b1: [] as number[], b8: [] as number[], fwdBwd: [] as number[] };
  const theirs = { b1: [] as number[], b8: [] as number[], fwdBwd: [] as number[] };
  let same = "n/a";
  for (let round = 0; round < rounds; round++) {
    const pytorch = runPytorch<PytorchResults>("models.py", {
      config: LLAMA_25M,
      generation: GENERATION,
      training: TRAINING,
      prompts1,
      prompts8,
      sequence,
    });
    const b1 = generationRate(model, prompts1);
    const b8 = generationRate(model, prompts8);
    ours.b1.push(b1.rate);
    ours.b8.push(b8.rate);
    ours.fwdBwd.push(trainingRate(model, sequence));
    if (pytorch !== null) {
      theirs.b1.push(pytorch["generate-kv-b1"]);
      theirs.b8.push(pytorch["generate-kv-b8"]);
      theirs.fwdBwd.push(pytorch["llama-fwd-bwd"]);
      same = JSON.stringify(pytorch.greedy) === JSON.stringify(b8.tokens) ? "yes" : "no";
    }
  }
  model.dispose();

  const reference = (values: number[]) => (values.length === 0 ? null : median(values));
  report("generate-kv-b1", median(ours.b1), reference(theirs.b1), "tokens/s", {
    rounds: String(rounds),
  });
  report("generate-kv-b8", median(ours.b8), reference(theirs.b8), "tokens/s", {
    rounds: String(rounds),
    same_tokens: same,
  });
  report("llama-fwd-bwd", median(ours.fwdBwd), reference(theirs.fwdBwd), "tokens/s", {
    rounds: String(rounds),
    seq: TRAINING.seq,
  });
}
