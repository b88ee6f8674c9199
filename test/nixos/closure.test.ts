// Closure export/import between two separate store roots, as two peers would do it.
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { closureInfo, exportClosure, fingerprint, importClosure, nixBase32, NixClosureStore, type PathInfo } from '../../nixos/index.js'
import { runNix } from '../../nixos/nix.js'
import { buildGeneration, ensureNix } from '../fixtures/nix/fixtures.js'

async function collect (it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const c of it) chunks.push(c)
  return Buffer.concat(chunks)
}

async function * chunked (buf: Uint8Array, size = 4096): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size)
}

async function isValid (store: string, path: string): Promise<boolean> {
  return await runNix('nix-store', ['--store', store, '--check-validity', path]).then(() => true, () => false)
}

describe('closure export/import between store roots', () => {
  let dir: string
  let storeA: string
  let path: string
  let infos: PathInfo[]
  let nar: Buffer
  let stores = 0
  const freshStore = (): string => join(dir, `store-${++stores}`)

  before(async () => {
    await ensureNix()
    dir = await mkdtemp(join(tmpdir(), 'fleetmesh-closure-'))
    path = await buildGeneration('c1', 'good')
    storeA = join(dir, 'a')
    await runNix('nix', ['copy', '--no-check-sigs', '--to', storeA, path])
    infos = await closureInfo(path, { store: storeA })
    nar = await collect(exportClosure(path, { store: storeA }))
  })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('moves a whole closure and verifies it', async () => {
    assert.equal(infos.length, 2, 'generation + its service')
    const storeB = freshStore()
    const got = await importClosure(exportClosure(path, { store: storeA }), path, { store: storeB, expected: infos })
    assert.deepEqual(got.map(i => i.path).sort(), infos.map(i => i.path).sort())
    for (const i of infos) assert.equal(await isValid(storeB, i.path), true)
    const [info] = await closureInfo(path, { store: storeB })
    assert.equal(info?.narHash, infos.find(i => i.path === path)?.narHash)
  })

  it('rejects a corrupted NAR and registers nothing', async () => {
    const bad = Buffer.from(nar)
    const at = bad.indexOf('createServer')
    assert.ok(at > 0)
    bad[at] = 'X'.charCodeAt(0)
    const store = freshStore()
    await assert.rejects(importClosure(chunked(bad), path, { store, expected: infos }), { code: 'CLOSURE_HASH_MISMATCH' })
    for (const i of infos) assert.equal(await isValid(store, i.path), false)
  })

  it('rejects a truncated stream and registers nothing', async () => {
    const store = freshStore()
    await assert.rejects(importClosure(chunked(nar.subarray(0, nar.length - 100)), path, { store, expected: infos }), { code: 'CLOSURE_MALFORMED' })
    for (const i of infos) assert.equal(await isValid(store, i.path), false)
  })

  it('rejects garbage, a stream without the expected path, and an oversize stream', async () => {
    await assert.rejects(importClosure(chunked(Buffer.from('not a nar at all, just bytes')), path, { store: freshStore(), expected: infos }), { code: 'CLOSURE_MALFORMED' })
    const service = infos.find(i => i.path !== path)?.path as string
    const onlyService = await collect(exportClosure(service, { store: storeA }))
    await assert.rejects(importClosure(chunked(onlyService), path, { store: freshStore(), expected: infos }), { code: 'CLOSURE_MALFORMED' })
    await assert.rejects(importClosure(chunked(nar), path, { store: freshStore(), expected: infos, maxBytes: 1000 }), { code: 'CLOSURE_TOO_LARGE' })
    await assert.rejects(importClosure(chunked(nar), path, { store: freshStore(), expected: infos.filter(i => i.path === path) }), { code: 'CLOSURE_HASH_MISMATCH' })
  })

  it('checks Nix signatures by trusted keys', async () => {
    const sk = join(dir, 'sk')
    const other = join(dir, 'other-sk')
    await writeFile(sk, (await runNix('nix', ['key', 'generate-secret', '--key-name', 'fleet-1'])).stdout, { mode: 0o600 })
    await writeFile(other, (await runNix('nix', ['key', 'generate-secret', '--key-name', 'fleet-1'])).stdout, { mode: 0o600 })
    const pk = (await runNix('nix', ['key', 'convert-secret-to-public'], { input: (await runNix('cat', [sk])).stdout })).stdout.trim()
    const otherPk = (await runNix('nix', ['key', 'convert-secret-to-public'], { input: (await runNix('cat', [other])).stdout })).stdout.trim()
    await runNix('nix', ['store', 'sign', '--store', storeA, '--key-file', sk, '--recursive', path])
    const signed = await closureInfo(path, { store: storeA })
    assert.ok(signed.every(i => i.signatures.some(s => s.startsWith('fleet-1:'))))

    const store = freshStore()
    await importClosure(chunked(nar), path, { store, expected: signed, trustedPublicKeys: [pk] })
    assert.equal(await isValid(store, path), true)

    const store2 = freshStore()
    await assert.rejects(importClosure(chunked(nar), path, { store: store2, expected: signed, trustedPublicKeys: [otherPk] }), { code: 'CLOSURE_SIGNATURE_INVALID' })
    await assert.rejects(importClosure(chunked(nar), path, { store: store2, expected: infos, trustedPublicKeys: [pk] }), { code: 'CLOSURE_SIGNATURE_INVALID' })
    assert.equal(await isValid(store2, path), false)
  })

  it('serves as a closure store: null for a path it lacks, export and verified import otherwise', async () => {
    const a = new NixClosureStore({ nix: { store: storeA } })
    assert.equal(await a.info('/nix/store/00000000000000000000000000000000-not-built-anywhere'), null)
    assert.deepEqual((await a.info(path))?.map(i => i.path).sort(), infos.map(i => i.path).sort())
    const storeB = freshStore()
    const b = new NixClosureStore({ nix: { store: storeB } })
    assert.equal(await b.info(path), null)
    await assert.rejects(b.import(chunked(nar), path, infos, { maxBytes: 1000 }), { code: 'CLOSURE_TOO_LARGE' })
    const got = await b.import(a.export(path), path, infos)
    assert.deepEqual(got.map(i => i.path).sort(), infos.map(i => i.path).sort())
    assert.deepEqual((await b.info(path))?.map(i => i.path).sort(), infos.map(i => i.path).sort())
  })

  it('computes fingerprints in Nix base-32', () => {
    // sha256("") in Nix base-32, as `nix hash to-base32` prints it.
    const empty = Buffer.from('47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=', 'base64')
    assert.equal(nixBase32(empty), '0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73')
    assert.equal(fingerprint({ path: '/nix/store/a8spvqsbbpp7h2mgrfa2cf2dqh1gvyp0-x', narHash: 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=', narSize: 8, references: ['/nix/store/b', '/nix/store/a'] }),
      '1;/nix/store/a8spvqsbbpp7h2mgrfa2cf2dqh1gvyp0-x;sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73;8;/nix/store/a,/nix/store/b')
  })
})
