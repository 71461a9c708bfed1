/**
 * Access to the optional labels of a pair, with an error naming the missing one.
 */

import { CdpoError } from "../errors.js";
import type { LabelName, PreferencePair } from "./types.js";

const LABEL_COLUMNS: Record<LabelName, string> = {
  better: "better_response_id (or chosen/rejected)",
  safer:
    "safer_response_id (or, for a file of ranked [safer, less safe] responses, read it with " +
    "--data-format ranked-safety)",
  safe:
    "is_response_0_safe / is_response_1_safe (or, for a file of ranked [safe, unsafe] " +
    "responses, read it with --data-format ranked-safety)",
  reward: "reward_0 / reward_1 (or reward_chosen / reward_rejected)",
  cost: "cost_0 / cost_1 (or cost_chosen / cost_rejected)",
};

type LabelValue<K extends LabelName> = NonNullable<PreferencePair[K]>;

/**
 * Returns a label of a pair, or throws CdpoError "DATA" naming the missing label and the columns
 * that provide it. For "safe", both responses must be labelled.
 */
export function requireLabel<K extends LabelName>(pair: PreferencePair, label: K): LabelValue<K> {
  const value = pair[label];
  const complete =
    value !== undefined &&
    (label !== "safe" || (value as [unknown, unknown]).every((v) => v !== null));
  if (!complete) {
    const what = value === undefined ? "has no" : "has an incomplete";
    throw new CdpoError(
      "DATA",
      `Pair ${JSON.stringify(pair.id)} ${what} "${label}" label. This step needs it: provide ` +
        `${LABEL_COLUMNS[label]} in the data.`,
    );
  }
  return value as LabelValue<K>;
}
