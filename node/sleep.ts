// Waiting that a stop cuts short: the daemon's loops (deploy agent, drift monitor, agent
// supervisor) must not hold a shutdown for the rest of a backoff or an interval.

/** Resolves after `ms`, or as soon as `signal` aborts: true only when the whole time passed. */
export async function sleepUnlessAborted (ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false
  return await new Promise<boolean>((resolve) => {
    const aborted = (): void => { clearTimeout(timer); resolve(false) }
    const timer = setTimeout(() => { signal.removeEventListener('abort', aborted); resolve(true) }, ms)
    signal.addEventListener('abort', aborted, { once: true })
  })
}
