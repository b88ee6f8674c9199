// The one reading of a written duration ("90s", "30m", "7d"), for every place that takes one:
// the CLI's flags (usage errors) and the control API's bodies (API errors) word their own refusals.

const UNIT_MS = { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 } as const
export type DurationUnit = keyof typeof UNIT_MS

/**
 * `text` in milliseconds: digits and one of ms, s, m, h, d; bare digits count in `bare` units
 * (none: a unit is required). Undefined when it is no duration or too long to count exactly.
 */
export function durationMs (text: string, bare?: DurationUnit): number | undefined {
  const m = /^(\d{1,15})(ms|s|m|h|d)?$/.exec(text.trim())
  const unit = (m?.[2] ?? bare) as DurationUnit | undefined
  if (m === null || unit === undefined) return undefined
  const ms = Number(m[1]) * UNIT_MS[unit]
  return Number.isSafeInteger(ms) ? ms : undefined
}

/** Whole seconds of at least 1 (an invite's or a room grant's lifetime), or undefined. */
export function durationSeconds (text: string, bare?: DurationUnit): number | undefined {
  const ms = durationMs(text, bare)
  return ms === undefined || ms < 1000 || ms % 1000 !== 0 ? undefined : ms / 1000
}
