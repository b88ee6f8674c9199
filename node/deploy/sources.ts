// A release names where its generation can be fetched: substituter URLs and the word `peers`.
// This turns that list into the deploy backend's fetch, trying each source in the given order.
import { NixosError, closureInfo, type Backend, type NixOptions } from '../../nixos/index.js'
import type { ClosureService } from '../../protocols/closures/index.js'

export const PEERS_SOURCE = 'peers'

export interface SourcesFetcherOptions {
  /** Fetches from substituter URLs (the Nix profile backend). */
  backend: Pick<Backend, 'fetch'>
  closures: Pick<ClosureService, 'fetch'>
  /** Peer ids to ask for `path`, best first (e.g. connected members that applied it). */
  peers: (path: string) => string[] | Promise<string[]>
}

/**
 * A `Backend['fetch']` over a release's sources. Failures of every source are reported together
 * as PATH_NOT_FETCHED, the code the deploy engine already reports for a fetch that failed.
 */
export function sourcesFetcher (opts: SourcesFetcherOptions): Backend['fetch'] {
  return async (path: string, sources: string[]): Promise<void> => {
    // With no source the backend only checks the local store: a path already there needs none.
    try {
      await opts.backend.fetch(path, [])
      return
    } catch (err) {
      if ((err as { code?: string }).code !== 'PATH_NOT_FETCHED') throw err
    }
    const failures: string[] = []
    for (const source of sources) {
      try {
        if (source === PEERS_SOURCE) await opts.closures.fetch(path, await opts.peers(path))
        else await opts.backend.fetch(path, [source])
        return
      } catch (err) {
        failures.push(`${source}: ${(err as Error).message}`)
      }
    }
    throw new NixosError('PATH_NOT_FETCHED', `could not fetch ${path} from ${sources.length} source(s)${failures.length > 0 ? `: ${failures.join('; ')}` : ''}`)
  }
}

/**
 * Before a release is signed: can its hosts get `path`? Sources are tried as hosts try them: a
 * substituter must list the whole closure (`nix path-info --recursive --store URL`); `peers`
 * serves what members hold, which the publisher can vouch for only when this host's store has it.
 * Undefined when some source has it, else why none does; `nixMissing` when Nix is not here to ask.
 */
export async function whyUnavailable (path: string, sources: string[], opts: NixOptions = {}): Promise<string | undefined> {
  const failures: string[] = []
  for (const source of sources) {
    try {
      await closureInfo(path, source === PEERS_SOURCE ? opts : { ...opts, store: source })
      return undefined
    } catch (err) {
      if ((err as { code?: string }).code === 'NIX_MISSING') throw err
      const why = ((err as Error).message.match(/error: (.*)/)?.[1] ?? (err as Error).message).trim()
      failures.push(source === PEERS_SOURCE ? `peers: not in this host's store, so no member is known to hold it (${why})` : `${source}: ${why}`)
    }
  }
  return `${path} is not available from its source(s): ${failures.join('; ')}`
}
