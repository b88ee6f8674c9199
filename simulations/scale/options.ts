// The scale scenario's options: `npm run sim -- scale [options]`.

export interface ScaleOptions {
  hosts: number
  loss: number
  churn: number
  failCanary: boolean
  /** the canary's apply never ends (a hung activation): its apply deadline has to settle it */
  hangCanary: boolean
  seed: number
  peers: number
  applyMs: number
  soakMs: number
  /** the release's applyDeadlineMs (undefined: the protocol's default) */
  applyDeadlineMs?: number
  /** each host's wall clock is off by up to ± this (it stamps entries and is decide's `now`) */
  skewMs: number
  limitMs: number
  foldAll: boolean
  svg?: string
  /** after the rollout, simulate this long of an idle fleet running the log's sync and witnesses (idle.ts) */
  idleMs?: number
  /** the digest repair period of the idle phase */
  repairMs: number
}

const DEFAULTS: ScaleOptions = { hosts: 10_000, loss: 0, churn: 0, failCanary: false, hangCanary: false, seed: 1, peers: 24, applyMs: 20_000, soakMs: 30_000, skewMs: 0, limitMs: 3_600_000, foldAll: false, svg: 'out/sim-scale.svg', repairMs: 10_000 }

/** `--quick`: the same scenario and figures on 200 hosts, plotted beside the README's plot, not over it. */
const QUICK: Partial<ScaleOptions> = { hosts: 200, svg: 'out/sim-scale-quick.svg' }

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `90s`, `1h`, `7d`, or plain milliseconds. */
export function duration (option: string, text: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text ?? '')
  if (m === null) throw new Error(`${option} needs a duration such as 90s, 1h or 7d`)
  return Number(m[1]) * UNIT_MS[m[2] ?? 'ms']
}

export function parseArgs (args: string[]): ScaleOptions {
  const o = { ...DEFAULTS, ...(args.includes('--quick') ? QUICK : {}) }
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    const num = (): number => {
      const v = Number(args[++i])
      if (!Number.isFinite(v)) throw new Error(`${a} needs a number`)
      return v
    }
    switch (a) {
      case '--hosts': o.hosts = num(); break
      case '--loss': o.loss = num(); break
      case '--churn': o.churn = num(); break
      case '--seed': o.seed = num(); break
      case '--peers': o.peers = num(); break
      case '--apply-ms': o.applyMs = num(); break
      case '--soak-ms': o.soakMs = num(); break
      case '--apply-deadline-ms': o.applyDeadlineMs = num(); break
      case '--skew-ms': o.skewMs = num(); break
      case '--limit-ms': o.limitMs = num(); break
      case '--fail-canary': o.failCanary = true; break
      case '--hang-canary': o.hangCanary = true; break
      case '--fold-all': o.foldAll = true; break
      case '--idle': o.idleMs = duration(a, args[++i]); break
      case '--repair-ms': o.repairMs = num(); break
      case '--svg': o.svg = args[++i]; break
      case '--no-svg': o.svg = undefined; break
      case '--quick': break
      default: throw new Error(`unknown option ${a}`)
    }
  }
  if (!Number.isInteger(o.hosts) || o.hosts < 10) throw new Error('--hosts must be an integer ≥ 10')
  if (o.loss < 0 || o.loss >= 1 || o.churn < 0 || o.churn > 1) throw new Error('--loss and --churn are fractions')
  if (o.failCanary && o.hangCanary) throw new Error('--fail-canary and --hang-canary exclude each other')
  // only hosts that fold every wave's starts run the apply deadline's timers (scale/log.ts)
  if (o.idleMs !== undefined && (o.idleMs <= 0 || o.repairMs <= 0)) throw new Error('--idle and --repair-ms must be positive')
  if (o.hangCanary && !o.foldAll) throw new Error('--hang-canary needs --fold-all')
  return o
}
