/**
 * Model benchmarks on a ~28M-parameter Llama (hidden 512, 6 layers, 8 heads, MLP 1408, vocabulary
 * 8192, untied head):
 *
 * - generate-kv-b1 / generate-kv-b8: greedy decoding with the KV cache, 32 new tokens after a
 *   16-token prompt, batch 1 and 8 (new tokens per second, all rows counted).
 * - llama-fwd-bwd: forward, cross-entropy and backward over one 256-token sequence (tokens/s).
 *
 * bench/py/models.py runs the same model, written op for op the same way, in PyTorch with the
 * same weights (same seed and draw order), prompts and thread count. Its linear layers are
 * `F.linear`, as in transformers. cdpo's addon runs a linear on one input row as a
 * matrix-vector product (native/src/ops.cc), so batch-1 decoding is faster. The reference also
 * returns its greedy tokens for batch 8, which must equal cdpo's.
 */
import { type CausalLM, createModel, generate } from "../src/models/index.js";
import * as torch from "../src/tensor/index.js";
import { median, PytorchSession, report, timeIt } from "./common.js";

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
    { warmup: 1, minSeconds: 1, minRuns: 3 },
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
    { warmup: 1, minSeconds: 1.5, minRuns: 3 },
  );
  model.eval();
  input.dispose();
  return (batch * seq) / seconds;
}

type Task = "generate-kv-b1" | "generate-kv-b8" | "llama-fwd-bwd";

/**
 * Measures each task in alternating turns of 1 to 2 seconds, PyTorch then cdpo in even rounds and
 * the reverse in odd ones, `CDPO_BENCH_ROUNDS` rounds (7 by default) after one untimed turn per
 * side. Each side reports its median, and the ratio is the median of the per-round ratios: on a
 * shared machine the load drifts, and a drift hits both turns of a pair alike.
 * `CDPO_BENCH_VERBOSE=1` prints every turn.
 */
export async function run(): Promise<void> {
  const rounds = Math.max(1, Number(process.env.CDPO_BENCH_ROUNDS ?? 7));
  const model = createModel(LLAMA_25M, { seed: 0 }) as CausalLM;
  model.eval();
  const prompts1 = randomTokens(1, GENERATION.promptLength, 1);
  const prompts8 = randomTokens(8, GENERATION.promptLength, 2);
  const sequence = randomTokens(TRAINING.batch, TRAINING.seq, 3);
  const pytorch = PytorchSession.open("models.py", {
    config: LLAMA_25M,
    generation: GENERATION,
    training: TRAINING,
    prompts1,
    prompts8,
    sequence,
  });

  let greedy: number[][] = [];
  const measure: Record<Task, () => number> = {
    "generate-kv-b1": () => generationRate(model, prompts1).rate,
    "generate-kv-b8": () => {
      const result = generationRate(model, prompts8);
      greedy = result.tokens;
      return result.rate;
    },
    "llama-fwd-bwd": () => trainingRate(model, sequence),
  };
  const ours = new Map<Task, number[]>();
  const theirs = new Map<Task, number[]>();
  const ratios = new Map<Task, number[]>();
  try {
    for (const task of Object.keys(measure) as Task[]) {
      await pytorch?.ask(task);
      measure[task]();
    }
    for (let round = 0; round < rounds; round++) {
      for (const task of Object.keys(measure) as Task[]) {
        let reference: number | null = null;
        let mine: number;
        if (round % 2 === 0) {
          reference = pytorch === null ? null : await pytorch.ask<number>(task);
          mine = measure[task]();
        } else {
          mine = measure[task]();
          reference = pytorch === null ? null : await pytorch.ask<number>(task);
        }
        if (process.env.CDPO_BENCH_VERBOSE)
          console.error(
            `# ${task} round ${round}: ours=${mine.toFixed(1)} pytorch=${reference?.toFixed(1) ?? "n/a"}`,
          );
        ours.set(task, [...(ours.get(task) ?? []), mine]);
        if (reference !== null) {
          theirs.set(task, [...(theirs.get(task) ?? []), reference]);
          ratios.set(task, [...(ratios.get(task) ?? []), mine / reference]);
        }
      }
    }
    const reference = pytorch === null ? null : await pytorch.ask<number[][]>("greedy");
    const same =
      reference === null
        ? "n/a"
        : JSON.stringify(reference) === JSON.stringify(greedy)
          ? "yes"
          : "no";
    const line = (task: Task, extra: Record<string, string | number>) => {
      const rates = theirs.get(task);
      const paired = rates ? median(ratios.get(task)!) : null;
      const extraFields = { ...extra, rounds: String(rounds) };
      report(
        task,
        median(ours.get(task)!),
        rates ? median(rates) : null,
        "tokens/s",
        extraFields,
        paired,
      );
    };
    line("generate-kv-b1", {});
    line("generate-kv-b8", { same_tokens: same });
    line("llama-fwd-bwd", { seq: TRAINING.seq });
  } finally {
    pytorch?.close();
    model.dispose();
  }
}
