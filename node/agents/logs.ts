// An agent's stdout and stderr, kept in bounded files in the data dir: `output.log` holds at
// most maxBytes, then becomes output.log.1 (output.log.1 becomes .2, and so on up to files - 1;
// the oldest is dropped). The directory is 0700 and the files 0600: an agent's output may hold
// what only its owner should read. Writes are synchronous and small: an agent that floods its
// output is slowed by its pipe, never by a growing buffer in the daemon.
//
// Readers address bytes by a cursor: the count of bytes ever written to this log (since the
// daemon opened it, the files already there counted first), so `logs --follow` reads on from
// where it was even across a rotation; bytes rotated out of the last file are gone, and a read
// from before them starts at the oldest byte still held.
import { closeSync, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'

export const LOG_FILE = 'output.log'
/** The most a single read returns. */
export const MAX_READ_BYTES = 256 * 1024

export interface LogRead { text: string, from: number, cursor: number, dropped: boolean }

export class RotatingLog {
  private fd: number
  private size: number
  /** bytes held in the rotated files, newest first */
  private rotated: number[] = []
  private total: number
  private readonly waiters = new Set<() => void>()
  /** output still draining from a run's pipes after the daemon closed the log is dropped */
  private closed = false

  constructor (readonly dir: string, private readonly maxBytes: number, private readonly files: number) {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    for (let i = 1; i < files; i++) {
      try {
        this.rotated.push(statSync(this.file(i)).size)
      } catch {
        break
      }
    }
    // rotated files past the current bound (the config shrank) are not held any more
    for (let i = this.rotated.length + 1; i < 21; i++) rmSync(this.file(i), { force: true })
    this.fd = openSync(this.file(0), 'a+', 0o600)
    this.size = fstatSync(this.fd).size
    this.total = this.size + this.rotated.reduce((a, b) => a + b, 0)
  }

  private file (i: number): string {
    return join(this.dir, i === 0 ? LOG_FILE : `${LOG_FILE}.${i}`)
  }

  /** the oldest cursor still held */
  get start (): number {
    return this.total - this.size - this.rotated.reduce((a, b) => a + b, 0)
  }

  get cursor (): number { return this.total }

  write (chunk: Buffer): void {
    if (this.closed) return
    let rest = chunk
    while (rest.length > 0) {
      if (this.size >= this.maxBytes) this.rotate()
      const part = rest.subarray(0, this.maxBytes - this.size)
      writeSync(this.fd, part)
      this.size += part.length
      this.total += part.length
      rest = rest.subarray(part.length)
    }
    for (const wake of this.waiters) wake()
    this.waiters.clear()
  }

  private rotate (): void {
    closeSync(this.fd)
    if (this.files === 1) {
      rmSync(this.file(0), { force: true })
      this.rotated = []
    } else {
      for (let i = this.files - 1; i >= 1; i--) {
        try { renameSync(this.file(i - 1), this.file(i)) } catch { /* not there yet */ }
      }
      this.rotated = [this.size, ...this.rotated].slice(0, this.files - 1)
    }
    this.fd = openSync(this.file(0), 'a+', 0o600)
    this.size = 0
  }

  /** Bytes from `since` (default: the last `tail` bytes held), at most MAX_READ_BYTES. */
  read (since?: number, tail = 64 * 1024): LogRead {
    const start = this.start
    const want = since ?? Math.max(start, this.total - tail)
    const from = Math.min(this.total, Math.max(start, want))
    const end = Math.min(this.total, from + MAX_READ_BYTES)
    const out = Buffer.alloc(end - from)
    // the files as cursor ranges, oldest first
    let at = start
    const ranges = [...this.rotated.map((size, i) => ({ file: this.file(i + 1), size })).reverse(), { file: this.file(0), size: this.size }]
    let filled = 0
    for (const r of ranges) {
      const lo = Math.max(from, at)
      const hi = Math.min(end, at + r.size)
      if (lo < hi) {
        const fd = r.file === this.file(0) ? this.fd : openSync(r.file, 'r')
        try {
          filled += readSync(fd, out, filled, hi - lo, lo - at)
        } finally {
          if (fd !== this.fd) closeSync(fd)
        }
      }
      at += r.size
    }
    return { text: out.subarray(0, filled).toString('utf8'), from, cursor: from + filled, dropped: want < start }
  }

  /** Resolves when something is written, or the signal aborts. */
  async next (signal: AbortSignal): Promise<void> {
    if (signal.aborted) return
    await new Promise<void>((resolve) => {
      const done = (): void => { this.waiters.delete(done); signal.removeEventListener('abort', done); resolve() }
      this.waiters.add(done)
      signal.addEventListener('abort', done, { once: true })
    })
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    closeSync(this.fd)
    for (const wake of this.waiters) wake()
  }
}
