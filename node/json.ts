// Audit bodies hold byte strings that JSON cannot carry; for people and scripts they are shown
// as {"$hex": …} (short) so `--json` output stays one schema.
export function toJson (value: unknown): unknown {
  if (value instanceof Uint8Array) return { $hex: Buffer.from(value).toString('hex') }
  if (Array.isArray(value)) return value.map(toJson)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]))
  }
  return value
}
