// Every start, exit, hang, leak, restart, crash loop and escalation goes into this host's feed
// as a signed `agent` entry, within a budget: the log is replicated to every member, so an
// agent that dies a thousand times a second must not write a thousand entries a second. Each
// agent may write at most `budget` entries per `windowMs` (the last RESERVED of them only for a
// crash loop or an escalation, which say the most); what the budget leaves out is counted and
// the count rides on the agent's next entry (`suppressed`), or on an entry of its own when the
// window ends.
import type { AgentBody, AgentEvent } from '../../protocols/agents/index.js'

export const DEFAULT_BUDGET = 20
export const DEFAULT_WINDOW_MS = 60_000
const RESERVED = 4
const CRITICAL: ReadonlySet<AgentEvent> = new Set(['crash-loop', 'escalate'])

export interface RecorderOptions {
  append: (kind: string, body: AgentBody) => Promise<unknown>
  onError: (err: Error) => void
  budget?: number
  windowMs?: number
  now?: () => number
}

interface Window { start: number, used: number, suppressed: number, flush?: NodeJS.Timeout }

export class AgentRecorder {
  private readonly windows = new Map<string, Window>()
  private readonly budget: number
  private readonly windowMs: number
  private readonly now: () => number
  private closed = false

  constructor (private readonly o: RecorderOptions) {
    this.budget = Math.max(RESERVED + 1, o.budget ?? DEFAULT_BUDGET)
    this.windowMs = o.windowMs ?? DEFAULT_WINDOW_MS
    this.now = o.now ?? (() => performance.now())
  }

  private window (agent: string): Window {
    const now = this.now()
    let w = this.windows.get(agent)
    if (w === undefined || now - w.start >= this.windowMs) {
      const carried = w?.suppressed ?? 0
      if (w?.flush !== undefined) clearTimeout(w.flush)
      w = { start: now, used: 0, suppressed: carried }
      this.windows.set(agent, w)
    }
    return w
  }

  /** Writes the entry if the agent's budget allows, else counts it. */
  record (body: AgentBody): void {
    if (this.closed) return
    const w = this.window(body.agent)
    const limit = CRITICAL.has(body.event) ? this.budget : this.budget - RESERVED
    if (w.used >= limit) {
      w.suppressed++
      if (w.flush === undefined) this.armFlush(body.agent, w)
      return
    }
    w.used++
    const out: AgentBody = w.suppressed > 0 ? { ...body, suppressed: w.suppressed } : body
    w.suppressed = 0
    this.o.append('agent', out).catch(this.o.onError)
  }

  private armFlush (agent: string, w: Window): void {
    w.flush = setTimeout(() => { this.flush(agent) }, Math.max(1, Math.ceil(this.windowMs - (this.now() - w.start))))
    w.flush.unref()
  }

  private flush (agent: string): void {
    const w = this.windows.get(agent)
    if (w === undefined) return
    w.flush = undefined
    if (w.suppressed === 0 || this.closed) return
    // a timer may fire a little before performance.now() says the window ended (libuv reads its
    // clock once per loop turn): the count would then find the old, spent window and be lost
    if (this.now() - w.start < this.windowMs) { this.armFlush(agent, w); return }
    const next = this.window(agent)
    if (next.used >= this.budget - RESERVED) return
    next.used++
    const suppressed = next.suppressed
    next.suppressed = 0
    this.o.append('agent', { agent, event: 'suppressed', suppressed }).catch(this.o.onError)
  }

  close (): void {
    this.closed = true
    for (const w of this.windows.values()) if (w.flush !== undefined) clearTimeout(w.flush)
  }
}
