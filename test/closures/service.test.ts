// Peer fetch of closures over real libp2p on loopback, between separate real Nix store roots;
// the serving peers run in processes of their own (test/fixtures/closure-peer.ts).
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createMeshLibp2p, type MeshLibp2p } from '../../node/libp2p.js'
import { closureInfo, NixClosureStore, NixProfileBackend, type NixOptions } from '../../nixos/index.js'
import { runNix } from '../../nixos/nix.js'
import { ClosureService, ClosuresError, type ClosureServiceOptions } from '../../protocols/closures/index.js'
import { sourcesFetcher } from '../../node/deploy/sources.js'
import { buildGeneration, ensureNix } from '../fixtures/nix/fixtures.js'

async function isValid (store: string, path: string): Promise<boolean> {
  return await runNix('nix-store', ['--store', store, '--check-validity', path]).then(() => true, () => false)
}

const PEER = fileURLToPath(new URL('../fixtures/closure-peer.ts', import.meta.url))

interface PeerProcess { child: ChildProcess, peer: string, addr: string }

/** Starts a closure peer process; it serves only the peers named in `allowed`. */
async function peerProcess (store: string, mode: 'honest' | 'flip' | 'truncate', allowed: string[]): Promise<PeerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', PEER, store, mode, ...allowed], { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = once(child, 'exit').then(([code]) => { throw new Error(`closure peer exited with ${String(code)}`) })
  const line = createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next()
  const first = await Promise.race([line, exited])
  const { peer, addr } = JSON.parse(String(first.value)) as { peer: string, addr: string }
  return { child, peer, addr }
}

async function stopPeer (p: PeerProcess | undefined): Promise<void> {
  if (p === undefined || p.child.exitCode !== null) return
  const exited = once(p.child, 'exit')
  p.child.stdin!.end()
  await exited
}

async function node (): Promise<MeshLibp2p> {
  return await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
}

interface Logged { level: 'info' | 'warn', obj: Record<string, unknown>, msg: string }

function recorder (): { log: NonNullable<ClosureServiceOptions['log']>, lines: Logged[] } {
  const lines: Logged[] = []
  return {
    lines,
    log: {
      info: (obj, msg) => { lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }) },
      warn: (obj, msg) => { lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }) }
    }
  }
}

/** The single reason a one-peer fetch failed. */
async function failure (p: Promise<unknown>): Promise<ClosuresError | Error & { code: string }> {
  const err = await p.then(() => assert.fail('fetch should have failed'), (e: unknown) => e)
  assert.ok(err instanceof ClosuresError, `expected a ClosuresError, got ${String(err)}`)
  assert.equal(err.code, 'FETCH_FAILED')
  assert.equal(err.attempts.length, 1)
  return err.attempts[0]?.error as ClosuresError
}

describe('closure service over libp2p', () => {
  let dir: string
  let path: string
  let storeA: string
  let a: PeerProcess // serves from storeA
  let flipper: PeerProcess // a member that flips a byte of the NAR it sends
  let truncator: PeerProcess // a member that sends a NAR shorter than it announced
  let b: MeshLibp2p // fetches
  let e: MeshLibp2p // serves from an empty store
  let stranger: MeshLibp2p // not a member
  let serviceE: ClosureService
  let members: Set<string>
  let stores = 0
  const freshStore = (): string => join(dir, `store-${++stores}`)
  const id = (n: MeshLibp2p): string => n.peerId.toString()
  const fetcher = (nix: NixOptions, extra: Partial<ClosureServiceOptions> = {}): ClosureService =>
    new ClosureService({ libp2p: b, store: new NixClosureStore({ nix }), allowPeer: p => members.has(p), ...extra })

  before(async () => {
    await ensureNix()
    dir = await mkdtemp(join(tmpdir(), 'fleetmesh-closures-'))
    path = await buildGeneration('peer-1', 'good')
    storeA = join(dir, 'a')
    await runNix('nix', ['copy', '--no-check-sigs', '--to', storeA, path])
    ;[b, e, stranger] = await Promise.all([node(), node(), node()])
    ;[a, flipper, truncator] = await Promise.all((['honest', 'flip', 'truncate'] as const).map(async (mode) => await peerProcess(storeA, mode, [id(b)])))
    members = new Set([id(b), id(e), a.peer, flipper.peer, truncator.peer])
    serviceE = new ClosureService({ libp2p: e, store: new NixClosureStore({ nix: { store: join(dir, 'empty') } }), allowPeer: p => members.has(p) })
    await serviceE.start()
    for (const addr of [a.addr, flipper.addr, truncator.addr, ...e.getMultiaddrs().map(String)]) {
      await b.dial(multiaddr(addr))
      await stranger.dial(multiaddr(addr))
    }
  })

  after(async () => {
    await serviceE?.stop()
    await Promise.all([a, flipper, truncator].map(stopPeer))
    await Promise.all([b, e, stranger].map(async n => await n?.stop()))
    await rm(dir, { recursive: true, force: true })
  })

  it('fetches a closure from a peer into a separate store', async () => {
    const store = freshStore()
    const served = await closureInfo(path, { store: storeA })
    const got = await fetcher({ store }).fetch(path, [a.peer])
    assert.deepEqual(got.map(i => i.path).sort(), served.map(i => i.path).sort())
    for (const i of served) assert.equal(await isValid(store, i.path), true)
    const [mine] = await closureInfo(path, { store })
    assert.equal(mine?.narHash, served.find(i => i.path === path)?.narHash)
    // Already valid: answered from the local store, without asking anyone.
    const again = await fetcher({ store }).fetch(path, [])
    assert.deepEqual(again.map(i => i.path).sort(), got.map(i => i.path).sort())
  })

  it('rejects a corrupted closure and registers nothing', async () => {
    const store = freshStore()
    const err = await failure(fetcher({ store }).fetch(path, [flipper.peer]))
    assert.equal(err.code, 'CLOSURE_HASH_MISMATCH')
    for (const i of await closureInfo(path, { store: storeA })) assert.equal(await isValid(store, i.path), false)
  })

  it('rejects a stream shorter than announced and registers nothing', async () => {
    const store = freshStore()
    const err = await failure(fetcher({ store }).fetch(path, [truncator.peer]))
    assert.equal(err.code, 'STREAM_TRUNCATED')
    assert.equal(await isValid(store, path), false)
  })

  it('serves members only, and fetches from members only', async () => {
    const store = freshStore()
    const outsider = new ClosureService({ libp2p: stranger, store: new NixClosureStore({ nix: { store } }), allowPeer: () => true })
    const refused = await failure(outsider.fetch(path, [a.peer]))
    assert.equal(refused.code, 'PEER_REFUSED')
    const picky = await failure(fetcher({ store }, { allowPeer: p => p !== a.peer }).fetch(path, [a.peer]))
    assert.equal(picky.code, 'PEER_NOT_ALLOWED')
    assert.equal(await isValid(store, path), false)
  })

  it('says clearly when the peer lacks the path', async () => {
    const unknown = '/nix/store/00000000000000000000000000000000-not-built-anywhere'
    const err = await failure(fetcher({ store: freshStore() }).fetch(unknown, [a.peer]))
    assert.equal(err.code, 'PATH_NOT_FOUND')
    assert.match(err.message, /not valid in this host's store/)
    await assert.rejects(fetcher({ store: freshStore() }).fetch('/etc/passwd', [a.peer]), { code: 'INVALID_STORE_PATH' })
  })

  it('falls over to the next peer', async () => {
    const store = freshStore()
    const { log, lines } = recorder()
    const got = await fetcher({ store }, { log }).fetch(path, [id(e), id(stranger), a.peer])
    assert.ok(got.some(i => i.path === path))
    assert.equal(await isValid(store, path), true)
    const failed = lines.filter(l => l.level === 'warn').map(l => [l.obj.peer, l.obj.code])
    assert.deepEqual(failed, [[id(e), 'PATH_NOT_FOUND'], [id(stranger), 'PEER_NOT_ALLOWED']])
    assert.deepEqual(lines.filter(l => l.level === 'info').map(l => l.obj.peer), [a.peer])
  })

  it('stops when aborted', async () => {
    const store = freshStore()
    const err = await fetcher({ store }).fetch(path, [a.peer], AbortSignal.abort()).then(() => assert.fail('fetch should have been aborted'), (e: unknown) => e)
    assert.ok(err instanceof ClosuresError)
    assert.equal(err.code, 'ABORTED')
    assert.equal(await isValid(store, path), false)
  })

  it('answers PEER_BUSY beyond its transfer limit', async () => {
    await serviceE.stop()
    const busy = new ClosureService({ libp2p: e, store: new NixClosureStore({ nix: { store: storeA } }), allowPeer: () => true, maxTransfers: 0 })
    await busy.start()
    try {
      const err = await failure(fetcher({ store: freshStore() }).fetch(path, [id(e)]))
      assert.equal(err.code, 'PEER_BUSY')
    } finally {
      await busy.stop()
      await serviceE.start()
    }
  })

  it('tries a release\'s sources in order: substituters, then peers', async () => {
    const cache = join(dir, 'cache')
    await runNix('nix', ['copy', '--no-check-sigs', '--from', storeA, '--to', `file://${cache}`, path])
    const sources = (store: string): ReturnType<typeof sourcesFetcher> => sourcesFetcher({
      backend: new NixProfileBackend({ store }),
      closures: fetcher({ store }),
      peers: () => [id(e), a.peer]
    })
    const viaCache = freshStore()
    await sources(viaCache)(path, [`file://${join(dir, 'no-such-cache')}`, `file://${cache}`, 'peers'])
    assert.equal(await isValid(viaCache, path), true)
    const viaPeers = freshStore()
    await sources(viaPeers)(path, [`file://${join(dir, 'no-such-cache')}`, 'peers'])
    assert.equal(await isValid(viaPeers, path), true)
    const nowhere = freshStore()
    const unknown = '/nix/store/00000000000000000000000000000000-not-built-anywhere'
    await assert.rejects(sources(nowhere)(unknown, [`file://${join(dir, 'no-such-cache')}`, 'peers']), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PATH_NOT_FETCHED')
      assert.match(err.message, /no-such-cache/)
      assert.match(err.message, /PATH_NOT_FOUND/)
      return true
    })
  })
})
