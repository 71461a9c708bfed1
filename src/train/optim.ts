/**
 * AdamW over a model's named parameters, with the usual split into decayed and non-decayed
 * groups.
 */

import type { Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";

export interface OptimizerConfig {
  lr: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEps: number;
}

/**
 * Tells whether a parameter gets weight decay: matrices and embeddings do, vectors do not.
 * Vectors are biases and norm weights (LayerNorm, RMSNorm), which `transformers`' Trainer also
 * leaves out.
 */
export function decays(name: string, param: Tensor): boolean {
  return param.ndim >= 2 && !name.endsWith(".bias");
}

/** Creates AdamW with group 0 = decayed parameters and group 1 = the rest (weight decay 0). */
export function createAdamW(
  namedParameters: readonly (readonly [string, Tensor])[],
  config: OptimizerConfig,
): torch.Optimizer {
  const decayed: Tensor[] = [];
  const plain: Tensor[] = [];
  for (const [name, param] of namedParameters) {
    if (!param.requiresGrad) continue;
    (decays(name, param) ? decayed : plain).push(param);
  }
  // Both groups always exist (possibly empty), so checkpoints have the same layout whatever
  // the model.
  return torch.adamw(
    [
      { params: decayed, lr: config.lr, weightDecay: config.weightDecay },
      { params: plain, lr: config.lr, weightDecay: 0 },
    ],
    { betas: [config.adamBeta1, config.adamBeta2], eps: config.adamEps },
  );
}
