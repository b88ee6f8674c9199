// The `drift` section of config.json (its keys are DEFAULT_DRIFT's, checked by config-file.ts).
import { DEFAULT_DRIFT, fail, type DriftConfig } from '../config.js'

export function parseDrift (path: string, raw: unknown): DriftConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(path, '"drift" must be an object')
  const d = { ...DEFAULT_DRIFT, ...(raw as Partial<DriftConfig>) }
  if (!Number.isSafeInteger(d.intervalMs) || d.intervalMs < 0) fail(path, '"drift.intervalMs" must be a non-negative integer (0: only on demand)')
  return d
}
