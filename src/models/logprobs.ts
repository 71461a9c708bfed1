/**
 * Sequence log-probabilities: for each row, the sum over its response tokens of
 * log p(token | prefix). DPO and its variants compare these sums between the policy and the
 * reference model (Rafailov et al., "Direct Preference Optimization", 2023, eq. 7).
 *
 * log p(y | x) = logit_y − logsumexp(logits): the target logit is gathered and the logsumexp
 * subtracted, so no log-softmax copy of the [tokens, V] logits is made (and kept for backward).
 * The head runs only at the positions that predict a response token, in chunks.
 */
import { invalidArgument } from "../errors.js";
import type { Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import type { CausalLM } from "./model.js";

export interface SequenceLogprobsInput {
  /** [N, T] int64. */
  inputIds: Tensor;
  /** [N, T], 1 on tokens, 0 on padding (either side). Omitted: no padding. */
  attentionMask?: Tensor | null;
  /** [N, T], 1 on the response tokens to score. Position 0 has no prefix and is never scored. */
  lossMask: Tensor;
}

export interface SequenceLogprobsOptions {
  /** Response tokens per head chunk (bounds the [chunk, V] logits alive at once). Default 4096. */
  chunkTokens?: number;
  /** Also returns the per-token log-probabilities [N, T]. */
  returnTokenLogps?: boolean;
}

export interface SequenceLogprobs {
  /** [N] float32: Σ log p over each row's response tokens. */
  logps: Tensor;
  /** [N] float32: number of scored tokens per row. */
  tokenCounts: Tensor;
  /** [N, T] float32: log p of token t given tokens < t on scored positions, 0 elsewhere. */
  tokenLogps: Tensor | null;
}

/** log p(target) for logits [..., V] and int64 targets [...]: float32 [...]. */
export function tokenLogprobs(logits: Tensor, targets: Tensor): Tensor {
  return torch.tidy(() => {
    const scores = logits.dtype === "float32" ? logits : logits.float(); // [..., V]
    const picked = scores.gather(-1, targets.unsqueeze(-1)).squeeze(-1); // [...]
    return picked.sub(scores.logsumexp(-1)); // [...]
  });
}

/**
 * Sums log p(token | prefix) over the response tokens of each row (`lossMask` = 1).
 *
 * Gradients flow to the model's parameters when recording is on; wrap the call in `noGrad` or
 * `inferenceMode` for a reference model. Tokens where `lossMask` is 1 but `attentionMask` is 0
 * are rejected with a RangeError.
 */
export function sequenceLogprobs(
  model: CausalLM,
  input: SequenceLogprobsInput,
  options: SequenceLogprobsOptions = {},
): SequenceLogprobs {
  const { inputIds, lossMask } = input;
  const attentionMask = input.attentionMask ?? null;
  const shape = inputIds.shape;
  if (shape.length !== 2) throw invalidArgument("range", "inputIds", "a [N, T] tensor", shape);
  const [rows, steps] = shape as [number, number];
  for (const [name, mask] of [
    ["lossMask", lossMask],
    ["attentionMask", attentionMask],
  ] as const) {
    if (
      mask !== null &&
      (mask.shape.length !== 2 || mask.size(0) !== rows || mask.size(1) !== steps)
    ) {
      throw invalidArgument("range", name, `shape [${rows}, ${steps}] like inputIds`, mask.shape);
    }
  }
  const chunkTokens = options.chunkTokens ?? 4096;
  if (!Number.isInteger(chunkTokens) || chunkTokens <= 0) {
    throw invalidArgument("range", "chunkTokens", "a positive integer", chunkTokens);
  }

  return torch.tidy(() => {
    // Hidden state at t predicts token t+1: score targets 1..T-1 from states 0..T-2.
    const scored = lossMask.narrow(1, 1, steps - 1).ne(0); // [N, T-1]
    if (attentionMask !== null) {
      const outside = scored.logicalAnd(attentionMask.narrow(1, 1, steps - 1).eq(0)); // [N, T-1]
      const count = outside.sum().item();
      if (count > 0) {
        throw new RangeError(
          `lossMask marks ${count} token(s) that attentionMask marks as padding; response tokens must be real tokens`,
        );
      }
    }
    const hidden = model.forward({ inputIds, attentionMask, hiddenOnly: true }).hiddenStates!; // [N, T, C]

    // gather the states that predict a response token
    const where = scored.nonzero(); // [M, 2]
    const total = where.size(0);
    const rowIndex = where.select(1, 0); // [M]
    const colIndex = where.select(1, 1); // [M]
    const states = hidden.index([rowIndex, colIndex]); // [M, C]
    const targets = inputIds.index([rowIndex, colIndex.add(1)]); // [M]

    // head and log-probabilities, chunk by chunk
    const pieces: Tensor[] = [];
    for (let start = 0; start < total; start += chunkTokens) {
      const length = Math.min(chunkTokens, total - start);
      const logits = model.computeLogits(states.narrow(0, start, length)); // [m, V]
      pieces.push(tokenLogprobs(logits, targets.narrow(0, start, length))); // [m]
    }
    const perToken =
      pieces.length === 1
        ? pieces[0]!
        : pieces.length === 0
          ? torch.zeros([0], { device: hidden.device })
          : torch.cat(pieces, 0); // [M]

    // sum per row
    const logps = torch.zeros([rows], { device: hidden.device }).scatterAdd(0, rowIndex, perToken); // [N]
    const tokenCounts = scored.sum(1, false, "float32"); // [N]
    let tokenLogps: Tensor | null = null;
    if (options.returnTokenLogps === true) {
      const flat = rowIndex.mul(steps).add(colIndex).add(1); // [M]
      tokenLogps = torch
        .zeros([rows * steps], { device: hidden.device })
        .scatter(0, flat, perToken)
        .view(rows, steps); // [N, T]
    }
    return { logps, tokenCounts, tokenLogps };
  });
}
