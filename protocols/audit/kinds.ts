// The kinds this folder itself interprets. Other folders add theirs (release, room-…) with
// registry.register(kind, validator) on the registry they hand to the store.
import { KindRegistry } from './codec.js'
import { WITNESS_KIND, validateWitnessBody } from './witness-body.js'

export function createKindRegistry (): KindRegistry {
  const registry = new KindRegistry()
  registry.register(WITNESS_KIND, validateWitnessBody)
  return registry
}
