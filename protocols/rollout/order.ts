// The one order between concurrent releases, shared by the decisions and the gate evaluator.
import type { ReleaseCandidate } from './types.js'

/** True when release a outranks b: higher number, then higher signer id, then higher release id. */
export function outranks (a: ReleaseCandidate, b: ReleaseCandidate): boolean {
  if (a.body.number !== b.body.number) return a.body.number > b.body.number
  if (a.feed !== b.feed) return a.feed > b.feed
  return a.body.id > b.body.id
}
