// Health checks as fleet managers' users know them (systemd units, HTTP GET, a command),
// each probed on its own timer so a hanging check never delays the verdict of a failing one.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { NixosError } from './errors.js'

interface CheckCommon {
  /** Names the check in results and events; defaults to a description of the check. */
  name?: string
  /** Pause between probes; default 1000 ms. */
  intervalMs?: number
  /** Consecutive failed probes that fail the check; default 3. */
  retries?: number
  /**
   * A service's start-up: failed probes before the check's first success do not count while
   * they come within this long of the start of verification; default 10000 ms (DEFAULT_START_PERIOD_MS).
   * A generation that never passes is failed this much later; one that passed once is not.
   */
  startPeriodMs?: number
  /** Limit of one probe; default 5000 ms. */
  timeoutMs?: number
}

export interface SystemdCheck extends CheckCommon { kind: 'systemd', units: string[] }
export interface HttpCheck extends CheckCommon { kind: 'http', url: string, expectStatus?: number }
/** argv runs directly; a string runs under `/bin/sh -c`. */
export interface CommandCheck extends CheckCommon { kind: 'command', command: string[] | string }
/** An agent the host supervises (node/agents): healthy while it runs and is live. `name` is the agent's. */
export interface AgentCheck extends CheckCommon { kind: 'agent', name: string }
export type HealthCheck = SystemdCheck | HttpCheck | CommandCheck | AgentCheck

export interface HealthPolicy {
  checks: HealthCheck[]
  /** How long every check must stay clean before a generation counts as good. */
  soakMs: number
  /** Whether the agent named runs and is live (node/agents); without it an agent check fails. */
  agents?: (name: string) => boolean
}

export interface ProbeResult { ok: boolean, output: string }

export interface CheckFailure {
  check: string
  kind: HealthCheck['kind']
  failures: number
  output: string
}

export type HealthVerdict =
  | { ok: true, probes: Record<string, number> }
  | { ok: false, failed: CheckFailure, probes: Record<string, number> }

/** One probe's result as it became known. */
export interface ProbeReport {
  check: string
  kind: HealthCheck['kind']
  ok: boolean
  output: string
  /** performance.now() when the result was known: monotonic, unlike the injectable `now`. */
  at: number
}

export interface VerifyOptions {
  now?: () => number
  signal?: AbortSignal
  /** Sees every probe, so callers can time when a generation first failed or first passed. */
  onProbe?: (p: ProbeReport) => void
}

export const OUTPUT_LIMIT = 4096
export const SYSTEMD_RUNTIME_DIR = '/run/systemd/system'
export const DEFAULT_START_PERIOD_MS = 10_000
const DEFAULTS = { intervalMs: 1000, retries: 3, timeoutMs: 5000, expectStatus: 200, startPeriodMs: DEFAULT_START_PERIOD_MS }

export function checkName (check: HealthCheck): string {
  if (check.name !== undefined) return check.name
  switch (check.kind) {
    case 'systemd': return `systemd:${check.units.join(',')}`
    case 'http': return `http:${check.url}`
    case 'command': return `command:${typeof check.command === 'string' ? check.command : check.command.join(' ')}`
    case 'agent': return check.name
  }
}

/** Rejects a policy that could never pass or never fail, before anything is switched. */
export function validatePolicy (policy: HealthPolicy): HealthPolicy {
  const bad = (why: string): never => { throw new NixosError('INVALID_CONFIG', `health policy: ${why}`) }
  if (!Number.isFinite(policy.soakMs) || policy.soakMs < 0) bad(`soakMs must be >= 0, got ${policy.soakMs}`)
  const names = new Set<string>()
  for (const c of policy.checks) {
    const name = checkName(c)
    if (names.has(name)) bad(`duplicate check name ${name}`)
    names.add(name)
    for (const k of ['intervalMs', 'timeoutMs'] as const) {
      const v = c[k]
      if (v !== undefined && (!Number.isFinite(v) || v <= 0)) bad(`${name}: ${k} must be > 0`)
    }
    if (c.retries !== undefined && (!Number.isInteger(c.retries) || c.retries < 1)) bad(`${name}: retries must be an integer >= 1`)
    if (c.startPeriodMs !== undefined && (!Number.isFinite(c.startPeriodMs) || c.startPeriodMs < 0)) bad(`${name}: startPeriodMs must be >= 0`)
    if (c.kind === 'systemd' && (c.units.length === 0 || c.units.some(u => u === '' || u.startsWith('-')))) bad(`${name}: units must be non-empty names`)
    if (c.kind === 'http' && !/^https?:\/\//.test(c.url)) bad(`${name}: url must be http(s)`)
    if (c.kind === 'command' && (c.command.length === 0)) bad(`${name}: command is empty`)
    if (c.kind === 'agent' && !/^[A-Za-z0-9._-]{1,32}$/.test(c.name)) bad(`${name}: name must be an agent's name`)
  }
  return policy
}

function bound (text: string): string {
  return text.length <= OUTPUT_LIMIT ? text : `${text.slice(0, OUTPUT_LIMIT)}…[truncated]`
}

async function runProcess (bin: string, args: string[], timeoutMs: number, signal: AbortSignal): Promise<ProbeResult> {
  return await new Promise((resolve) => {
    execFile(bin, args, { timeout: timeoutMs, killSignal: 'SIGKILL', signal, maxBuffer: 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const out = `${stdout}${stderr}`
      if (err === null) { resolve({ ok: true, output: bound(out) }); return }
      const e = err as NodeJS.ErrnoException & { killed?: boolean }
      if (e.code === 'ENOENT') { resolve({ ok: false, output: `${bin} not found` }); return }
      const why = e.killed === true ? `timed out after ${timeoutMs} ms` : `exited ${String(e.code)}`
      resolve({ ok: false, output: bound(`${why}\n${out}`) })
    })
  })
}

async function probeHttp (check: HttpCheck, timeoutMs: number, signal: AbortSignal): Promise<ProbeResult> {
  const expect = check.expectStatus ?? DEFAULTS.expectStatus
  try {
    const res = await fetch(check.url, { signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]), redirect: 'manual' })
    const body = await readBounded(res)
    const ok = res.status === expect
    return { ok, output: bound(`HTTP ${res.status}${ok ? '' : ` (expected ${expect})`}\n${body}`) }
  } catch (err) {
    const e = err as Error & { cause?: Error }
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `${e.message}${e.cause !== undefined ? `: ${e.cause.message}` : ''}`
    return { ok: false, output: bound(why) }
  }
}

async function readBounded (res: Response): Promise<string> {
  if (res.body === null) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  while (size < OUTPUT_LIMIT) {
    const { done, value } = await reader.read()
    if (done) break
    chunks.push(value)
    size += value.byteLength
  }
  await reader.cancel()
  return Buffer.concat(chunks).toString('utf8')
}

export async function probe (check: HealthCheck, signal: AbortSignal, agents?: HealthPolicy['agents']): Promise<ProbeResult> {
  const timeoutMs = check.timeoutMs ?? DEFAULTS.timeoutMs
  switch (check.kind) {
    case 'systemd': {
      // sd_booted(): without this directory systemctl can only say "Host is down".
      if (!existsSync(SYSTEMD_RUNTIME_DIR)) return { ok: false, output: `systemd is not running on this host (no ${SYSTEMD_RUNTIME_DIR}); units ${check.units.join(', ')} cannot be checked` }
      const r = await runProcess('systemctl', ['is-active', '--', ...check.units], timeoutMs, signal)
      if (r.output === 'systemctl not found') return { ok: false, output: 'systemd is not available on this host (systemctl not found)' }
      return r
    }
    case 'http': return await probeHttp(check, timeoutMs, signal)
    case 'command': return typeof check.command === 'string'
      ? await runProcess('/bin/sh', ['-c', check.command], timeoutMs, signal)
      : await runProcess(check.command[0] ?? '', check.command.slice(1), timeoutMs, signal)
    case 'agent':
      if (agents === undefined) return { ok: false, output: `no agent supervisor to ask about agent ${check.name}` }
      return agents(check.name) ? { ok: true, output: `agent ${check.name} is running and live` } : { ok: false, output: `agent ${check.name} is not running and live` }
  }
}

/**
 * Verifies a generation: every check probes on its own loop; the verdict is a failure as
 * soon as one check reaches its consecutive-failure threshold (not counting failures inside its
 * start period before its first success), and a success once the soak window (measured with
 * `now`) has passed with every check's latest probe passing.
 */
export async function verify (policy: HealthPolicy, opts: VerifyOptions = {}): Promise<HealthVerdict> {
  validatePolicy(policy)
  const now = opts.now ?? Date.now
  const start = now()
  const stop = new AbortController()
  const outer = opts.signal
  const probes: Record<string, number> = {}
  const healthy = new Set<string>()
  let settle!: (v: HealthVerdict | null) => void
  const verdict = new Promise<HealthVerdict | null>((resolve) => { settle = resolve })
  const finish = (v: HealthVerdict | null): void => { settle(v); stop.abort() }
  const onAbort = (): void => { finish(null) }
  if (outer?.aborted === true) onAbort()
  outer?.addEventListener('abort', onAbort, { once: true })

  const soakDone = (): boolean => now() - start >= policy.soakMs && healthy.size === policy.checks.length
  if (policy.checks.length === 0) {
    // Nothing to probe: the soak window alone decides.
    await sleep(policy.soakMs, stop.signal)
    finish({ ok: true, probes })
  }

  const loops = policy.checks.map(async (check) => {
    const name = checkName(check)
    const retries = check.retries ?? DEFAULTS.retries
    const interval = check.intervalMs ?? DEFAULTS.intervalMs
    const startPeriod = check.startPeriodMs ?? DEFAULTS.startPeriodMs
    let passedOnce = false
    let failures = 0
    probes[name] = 0
    while (!stop.signal.aborted) {
      const r = await probe(check, stop.signal, policy.agents)
      if (stop.signal.aborted) return
      probes[name] = (probes[name] ?? 0) + 1
      report(opts.onProbe, { check: name, kind: check.kind, ok: r.ok, output: r.output, at: performance.now() })
      if (r.ok) {
        failures = 0
        passedOnce = true
        healthy.add(name)
        if (soakDone()) { finish({ ok: true, probes }); return }
      } else if (!passedOnce && now() - start < startPeriod) {
        // Still starting: not yet a failure of the generation.
      } else {
        failures++
        healthy.delete(name)
        if (failures >= retries) {
          finish({ ok: false, failed: { check: name, kind: check.kind, failures, output: r.output }, probes })
          return
        }
      }
      await sleep(interval, stop.signal)
    }
  })
  const result = await verdict
  outer?.removeEventListener('abort', onAbort)
  await Promise.allSettled(loops)
  if (result === null) throw new NixosError('HEALTH_CHECK_FAILED', 'health verification aborted', { cause: outer?.reason })
  return result
}

function report (onProbe: VerifyOptions['onProbe'], p: ProbeReport): void {
  try {
    onProbe?.(p)
  } catch {
    // An observer's bug must not change a generation's verdict.
  }
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  await new Promise<void>((resolve) => {
    const t = setTimeout(done, ms)
    function done (): void { clearTimeout(t); signal.removeEventListener('abort', done); resolve() }
    signal.addEventListener('abort', done, { once: true })
  })
}
