// What the systemd backend reads and asks of systemd: `systemctl show` output parsed into one
// unit's state, and the one narrow door (SystemctlRunner) every systemctl and systemd-notify
// call goes through, so the state watching is tested on recorded output where systemd is not
// PID 1.
import { execFile } from 'node:child_process'
import { constants } from 'node:os'

export type SystemdErrorCode =
  /** `systemctl show` output that lacks a property or holds a value of the wrong form */
  | 'SYSTEMD_OUTPUT_INVALID'
  /** a systemctl call that exited non-zero (no such unit, start limit hit, no systemd) */
  | 'SYSTEMCTL_FAILED'

export class SystemdError extends Error {
  override readonly name = 'SystemdError'
  constructor (readonly code: SystemdErrorCode, message: string) {
    super(message)
  }
}

/** Runs a program (systemctl, systemd-notify) and hands back its output; rejects with SYSTEMCTL_FAILED. */
export type SystemctlRunner = (argv: string[]) => Promise<string>

const MAX_OUTPUT = 64 * 1024

export const execSystemctl: SystemctlRunner = async (argv) => await new Promise((resolve, reject) => {
  execFile(argv[0]!, argv.slice(1), { encoding: 'utf8', maxBuffer: MAX_OUTPUT, timeout: 30_000 }, (err, stdout, stderr) => {
    if (err !== null) reject(new SystemdError('SYSTEMCTL_FAILED', `${argv.join(' ')}: ${(stderr.trim() || err.message).slice(0, 512)}`))
    else resolve(stdout)
  })
})

export function unitName (agent: string): string {
  return `fleetmesh-agent-${agent}.service`
}

/** The properties asked for, in `systemctl show --property=` form. */
export const SHOW_PROPERTIES = ['LoadState', 'ActiveState', 'SubState', 'Result', 'MainPID', 'ExecMainPID', 'ExecMainCode', 'ExecMainStatus', 'NRestarts', 'MemoryCurrent', 'InvocationID']

export interface UnitState {
  loadState: string
  /** active, reloading, inactive, failed, activating, deactivating */
  activeState: string
  /** running, auto-restart, exited, failed, dead, stop-sigterm, … */
  subState: string
  /** success, exit-code, signal, core-dump, watchdog, oom-kill, timeout, start-limit-hit, … */
  result: string
  /** 0 when no main process runs */
  mainPid: number
  /** the main process last started, running or not */
  execMainPid: number
  /** how it ended: by exit code or by signal; null while it runs or before it ever ran */
  exit: { code: number | null, signal: string | null } | null
  /** restarts systemd made by itself (Restart=) since the unit was last started by hand */
  nRestarts: number
  /** the unit's cgroup memory; undefined without memory accounting or without a cgroup */
  memoryBytes: number | undefined
  invocationId: string
}

// si_code of the main process's SIGCHLD (ExecMainCode): CLD_EXITED, CLD_KILLED, CLD_DUMPED
const CLD_EXITED = 1
const CLD_KILLED = 2
const CLD_DUMPED = 3
const NAME_RE = /^[a-z-]{1,32}$/
// a number has aliases (SIGIOT is SIGABRT): the first name the table gives is the one kill(1) prints
const SIGNALS = new Map<number, string>()
for (const [name, n] of Object.entries(constants.signals)) if (!SIGNALS.has(n)) SIGNALS.set(n, name)

function num (props: Map<string, string>, key: string, max = 2 ** 53 - 1): number {
  const v = props.get(key)
  if (v === undefined || !/^\d{1,16}$/.test(v) || Number(v) > max) throw new SystemdError('SYSTEMD_OUTPUT_INVALID', `systemctl show: ${key}=${v ?? '(missing)'} is not a number`)
  return Number(v)
}

function word (props: Map<string, string>, key: string, re = NAME_RE): string {
  const v = props.get(key)
  if (v === undefined || !re.test(v)) throw new SystemdError('SYSTEMD_OUTPUT_INVALID', `systemctl show: ${key}=${v ?? '(missing)'} is not a state`)
  return v
}

/** `systemctl show --property=…` output (one `Key=Value` a line) as one unit's state. */
export function parseUnitState (text: string): UnitState {
  if (text.length > MAX_OUTPUT) throw new SystemdError('SYSTEMD_OUTPUT_INVALID', `systemctl show: more than ${MAX_OUTPUT} characters`)
  const props = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const eq = line.indexOf('=')
    if (eq <= 0) throw new SystemdError('SYSTEMD_OUTPUT_INVALID', `systemctl show: "${line.slice(0, 80)}" is not Key=Value`)
    props.set(line.slice(0, eq), line.slice(eq + 1))
  }
  const execMainPid = num(props, 'ExecMainPID', 2 ** 31 - 1)
  const how = num(props, 'ExecMainCode', 255)
  const status = num(props, 'ExecMainStatus', 255)
  const memory = props.get('MemoryCurrent')
  // systemd prints an unset 64-bit value as "[not set]" (older versions: 2^64 - 1)
  const memoryBytes = memory === '[not set]' || memory === '18446744073709551615' || memory === '' ? undefined : num(props, 'MemoryCurrent')
  return {
    loadState: word(props, 'LoadState'),
    activeState: word(props, 'ActiveState'),
    subState: word(props, 'SubState'),
    result: word(props, 'Result'),
    mainPid: num(props, 'MainPID', 2 ** 31 - 1),
    execMainPid,
    exit: how === CLD_EXITED
      ? { code: status, signal: null }
      : how === CLD_KILLED || how === CLD_DUMPED ? { code: null, signal: SIGNALS.get(status) ?? `SIG${status}` } : null,
    nRestarts: num(props, 'NRestarts'),
    memoryBytes,
    invocationId: props.get('InvocationID') === '' ? '' : word(props, 'InvocationID', /^[0-9a-f]{32}$/)
  }
}
