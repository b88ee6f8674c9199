// Property (issue 17): the folds over (retained entries at or below a checkpoint's cover ∪ the
// entries after it) decide exactly what the folds over the whole log decide. fast-check writes
// random fleet histories as really signed, chained entries: members admitted, promoted, demoted
// (grants back-dated too) and revoked (with cuts behind the revoked feed's head too), releases
// with waves, basis or live plans, reused ids and numbers, outcomes driven by the real decide()
// (apply, fail, soak, unhealthy, revert, overdue attestations), pauses, resumes with accepted
// failures, aborts, room changes, checkpoints sealing releases (by the writer's sealFloor or any
// floor, counted or not), aborts of every open release after a seal, witnesses and noise. At a random per-feed cover the real retainedRefs
// picks what is kept for a checkpoint that seals what the log's counted checkpoints seal; then for every writer decide() (with and without its timers
// run out) and soakWatchOf(), and for every release releaseStatus(), rollbackTargets() and
// controlState(), nextReleaseNumber(), the member view and every room's fold must be identical.
// A second cover above the first checks that retention composes (what H5's store relies on).
// Reproducible: PROPERTY_SEED=N replays a run (fast-check prints the seed and path of a failure).
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createSigner, type Signer } from '../../crypto/sign.js'
import { attachSignature, entryHash, signingBytes, ZERO_HASH } from '../../protocols/audit/codec.js'
import type { StoredEntry } from '../../protocols/audit/types.js'
import { membershipSchemas } from '../../protocols/membership/index.js'
import { applyEntry, controlState, decide, effectiveRelease, emptyState, releaseStatus, sealedBelow, sealFloor, type ReleaseBody, type RolloutState, type Wave } from '../../protocols/rollout/index.js'
import { checkpointBody } from '../../protocols/checkpoint/index.js'
import { roomIdFor } from '../../protocols/rooms/index.js'
import { covered, FoldedMembership, fromCheckpoint, MESH, NOW, observe, refKey, T0, type Cover } from './helpers.js'

const SEED = Number(process.env.PROPERTY_SEED ?? 17)
const RUNS = Number(process.env.PROPERTY_RUNS ?? 60)
const PATHS = ['/nix/store/0123456789abcdfghijklmnpqrsvwxyz-system-a', '/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-system-b', '/nix/store/a0123456789abcdfghijklmnpqrsvwxy-system-c']
const TAGS = ['web', 'db']

// writers: 0 founder, 1 and 2 admins-to-be, 3..8 hosts, 9 an outsider nobody admits at first
const N = 10
const keys = await Promise.all(Array.from({ length: N }, async (_, i) => generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(i + 40))))
const ids = keys.map(k => peerIdFromPrivateKey(k).toString())
const signers: Signer[] = keys.map(k => createSigner(k))
const MEMBERSHIP_KINDS = new Set(Object.keys(membershipSchemas))

interface Op { t: number, a: number, b: number, c: number, d: number, flag: boolean }

/** A fleet writing one log; its own folds (kept as it goes) drive the hosts' outcomes. */
class World {
  readonly entries: StoredEntry[] = []
  private readonly seq = new Array<number>(N).fill(0)
  private readonly prev = new Array<Uint8Array>(N).fill(ZERO_HASH)
  private readonly heads = new Map<string, number>()
  private readonly membershipFeeds = new Set<string>()
  readonly state: RolloutState = emptyState()
  readonly m = new FoldedMembership(feed => this.heads.get(feed) ?? -1)
  readonly releases: string[] = []
  readonly rooms: Array<{ id: string, creator: number, epoch: number }> = []
  private step = 0
  private number = 0

  write (w: number, kind: string, body: unknown, ts = T0 + this.step * 1000): void {
    const unsigned = { feed: ids[w], seq: this.seq[w], prev: this.prev[w], ts, kind, body }
    const signed = signingBytes(unsigned)
    const sig = signers[w].sign(signed)
    const bytes = attachSignature(signed, unsigned, sig)
    const e = { entry: { ...unsigned, sig }, bytes, hash: entryHash(bytes) }
    this.seq[w]++
    this.prev[w] = e.hash
    this.entries.push(e)
    this.heads.set(ids[w], e.entry.seq)
    if (MEMBERSHIP_KINDS.has(kind)) this.membershipFeeds.add(ids[w])
    this.m.add(e.entry)
    applyEntry(this.state, e.entry)
  }

  run (op: Op): void {
    this.step++
    // mostly the admins (0, 1 and 2 once promoted) write what needs authority; sometimes anyone
    const w = op.b % 5 === 0 ? op.a % N : op.a % 3
    const peer = ids[op.b % N]
    const t = op.t % 24
    if (t < 2) this.write(w, 'admit', { peer, role: op.flag ? 'admin' : 'host', tags: TAGS.filter((_, i) => (op.c >> i) & 1) })
    else if (t < 3) {
      // usually the revoker's view of the feed's head; sometimes a cut behind it, as a revoker that had not synced writes
      const head = this.heads.get(peer) ?? -1
      this.write(w, 'revoke', { peer, after: Math.max(-1, head - (op.flag ? op.c % 4 : 0)) })
    } else if (t < 4) {
      const body: Record<string, unknown> = { peer }
      if (op.c % 3 !== 2) body.role = op.c % 3 === 0 ? 'admin' : 'host'
      if (op.c % 3 === 2 || op.flag) body.tags = TAGS.filter((_, i) => (op.d >> i) & 1)
      // a back-dated grant changes a role as of earlier entries
      this.write(w, 'grant', body, T0 + (this.step - (op.flag ? op.d % 20 : 0)) * 1000)
    } else if (t < 7) this.release(w, op)
    else if (t < 9) this.control(w, op)
    else if (t < 19) this.act(3 + op.a % (N - 3), op)
    else if (t < 21) this.room(op)
    else if (t < 22 && op.b % 3 === 0) this.seal(w, op)
    else if (t < 22) this.write(op.a % N, op.flag ? 'witness' : 'status', op.flag ? { heads: [] } : { n: op.c })
    else {
      const release = op.d % 4 === 0 ? {} : { release: this.releases[op.d % Math.max(1, this.releases.length)] ?? 'r0' }
      this.write(op.a % N, 'health', { path: PATHS[op.c % 3], ok: op.flag, ...release })
    }
  }

  private release (w: number, op: Op): void {
    const reuse = this.releases.length > 0 && op.d % 3 === 0
    const id = reuse ? this.releases[op.c % this.releases.length] : `r${this.releases.length}`
    if (!reuse) this.releases.push(id)
    this.number = op.d % 5 === 0 ? Math.max(1, this.number) : this.number + 1
    // a reused id (a hand-made entry: release publish never reuses one) takes the next number too,
    // so an id may have entries on both sides of a seal's floor and of a cover
    const number = this.number
    const target = op.c % 3 === 0 ? { tag: TAGS[op.b % 2] } : op.c % 3 === 1 ? { host: ids[3 + op.b % 6] } : {}
    const waves: Wave[] = Array.from({ length: 1 + op.b % 3 }, (_, i): Wave => {
      const r = (op.c >>> (i * 3)) + op.d
      const sel = r % 4 === 0 ? { count: 1 + r % 3 } : r % 4 === 1 ? { percent: [50, 100][r % 2] } : r % 4 === 2 ? { tag: TAGS[r % 2] } : { hosts: [ids[3 + r % 6], ids[3 + (r + 1) % 6]] }
      const wave: Wave = { ...sel, gate: { healthy: [0, 50, 100][(r >> 2) % 3], soakMs: (r >> 3) % 2 === 0 ? 0 : 1000 } }
      if ((r >> 4) % 3 === 0) wave.waitOfflineMs = 0
      return wave
    })
    const body: ReleaseBody = { id, number, targets: [{ ...target, path: PATHS[op.a % 3], sources: ['peers'] }], waves, maxFailures: op.a % 3 }
    if (op.flag) body.autoRevert = true
    if (op.c % 2 === 0) body.basis = Object.fromEntries([...this.membershipFeeds].map(f => [f, this.heads.get(f)!]))
    this.write(w, 'release', body)
  }

  /** A checkpoint entry sealing what the writer's policy seals, or any floor (its roots are not what the folds read). */
  private seal (w: number, op: Op): void {
    const sealed = op.flag ? sealFloor(this.state, this.m) : op.d % (this.number + 2)
    this.write(w, 'checkpoint', checkpointBody({ number: 1 + op.c % 50, cover: new Uint8Array(32), count: 0, retain: new Uint8Array(32), retained: 0, sealed }))
  }

    private control (w: number, op: Op): void {
    if (this.releases.length === 0) return
    const release = this.releases[op.c % this.releases.length]
    const action = (['pause', 'resume', 'resume', 'abort'] as const)[op.d % 4]
    const body: Record<string, unknown> = { release, action }
    if (action === 'resume') {
      const pauses = controlState(this.state, this.m, release).pauses
      if (op.flag && pauses.length > 0) body.resumes = pauses
      const failed = releaseStatus(this.state, this.m, release)?.failedHosts ?? []
      if (op.b % 2 === 0 && failed.length > 0) body.accept = failed
    }
    this.write(w, 'release-control', body)
  }

  /** Host h does what the real decide() says, or moves its apply on: ok or failed, soaked or unhealthy. */
  private act (h: number, op: Op): void {
    const host = ids[h]
    if (op.d % 6 === 0 && this.releases.length > 0) {
      // a host that does not follow the decisions (a bug, a hand-written entry): any outcome, any release
      const own = this.releases.filter(id => this.state.outcomes.get(id)?.latest.has(host) === true)
      const release = own.length > 0 && op.flag ? own[op.c % own.length] : this.releases[op.c % this.releases.length]
      const path = PATHS[op.b % 3]
      const bodies = [
        { kind: 'apply-start', body: { release, path, wave: op.c % 2 } },
        { kind: 'apply-ok', body: { release, path, healthyAt: T0 } },
        { kind: 'soaked', body: { release, path, attempt: 'x', soakMs: 1000 } },
        { kind: 'apply-failed', body: { release, path, reason: 'manual' } },
        { kind: 'rollback', body: { release, from: path, to: PATHS[2], ok: true } }
      ]
      // after a failure, mostly an outcome that is not one: the failure must still count
      const failedHere = ['apply-failed', 'rollback'].includes(this.state.outcomes.get(release)?.latest.get(host)?.kind ?? '')
      const { kind, body } = bodies[op.b % (failedHere ? 3 : bodies.length)]
      this.write(h, kind, body)
      return
    }
    for (const id of this.releases) {
      const latest = this.state.outcomes.get(id)?.latest.get(host)
      if (latest === undefined) continue
      const { path = PATHS[0], attempt = 'x' } = latest.body as { path?: string, attempt?: string }
      if ((latest.kind === 'apply-failed' || latest.kind === 'rollback') && op.c % 4 === 1) {
        // an operator retries by hand on a host that failed: its failure still counts for the release
        this.write(h, 'apply-start', { release: id, path, wave: 0, attempt: `retry${this.step}` })
        return
      }
      if (latest.kind === 'apply-start') {
        if (op.flag && op.c % 3 === 0) this.write(h, 'apply-failed', { release: id, path, reason: 'unit failed', attempt })
        else this.write(h, 'apply-ok', { release: id, path, healthyAt: T0 + this.step, attempt })
        return
      }
      if (latest.kind === 'apply-ok' && op.c % 2 === 0) {
        if (op.flag && op.d % 3 === 0) this.write(h, 'health', { release: id, path, ok: false })
        else this.write(h, 'soaked', { release: id, path, attempt, soakMs: 1000 })
        return
      }
    }
    let d = decide(this.state, this.m, host, NOW)
    if (op.flag && 'timer' in d && d.timer !== undefined) d = decide(this.state, this.m, host, NOW, { expired: new Set([d.timer.key]) })
    if (d.action === 'apply') this.write(h, 'apply-start', { release: d.release, path: d.path, wave: d.wave, attempt: `a${this.step}` })
    else if (d.action === 'revert') this.write(h, 'rollback', { release: d.release, from: d.path, to: PATHS[2], ok: op.d % 2 === 0 })
    else if (d.action === 'attest') this.write(h, 'overdue', d.body)
  }

  private room (op: Op): void {
    const kid = new Uint8Array(16).fill(op.d % 3)
    if (this.rooms.length === 0 || op.c % 5 === 0) {
      const w = op.a % N
      const nonce = new Uint8Array(16).fill(this.step % 256)
      const id = roomIdFor(ids[w], nonce)
      this.rooms.push({ id, creator: w, epoch: 0 })
      this.write(w, 'room-create', { room: id, name: `room${this.rooms.length}`, history: op.flag ? 'shared' : 'joined', members: [{ host: ids[w], agent: 'a' }], nonce, epoch: 0, kid, keys: [] })
      return
    }
    const room = this.rooms[op.c % this.rooms.length]
    // mostly its creator, else an admin or anyone
    const w = op.b % 3 === 0 ? op.a % N : room.creator
    // mostly the next epoch or the current one; sometimes a stale one (a change that lost a race)
    const epoch = Math.max(0, room.epoch + (op.d % 3) - 1)
    room.epoch = Math.max(room.epoch, epoch)
    if (op.b % 4 === 1) this.write(w, 'room-rekey', { room: room.id, epoch, kid, keys: [] })
    else this.write(w, 'room-member', { room: room.id, op: op.flag ? 'add' : 'remove', member: { host: ids[op.a % N], agent: `a${op.d % 2}` }, epoch, kid, keys: [] })
  }
}

function build (ops: Op[]): World {
  const w = new World()
  w.write(0, 'genesis', { mesh: MESH, name: 'fleet', founder: ids[0] })
  w.write(0, 'admit', { peer: ids[1], role: 'admin', tags: [] })
  for (let h = 3; h < 9; h++) w.write(0, 'admit', { peer: ids[h], role: 'host', tags: [TAGS[h % 2]] })
  for (const op of ops) w.run(op)
  return w
}

const small = fc.nat({ max: 1 << 20 })
const opArb = fc.record({ t: small, a: small, b: small, c: small, d: small, flag: fc.boolean() })

describe('checkpoint retention', () => {
  it('folds from a checkpoint (retained ∪ after the cover) decide what folds over everything decide', () => {
    let kept = 0
    let unsealed = 0
    let sealing = 0
    let total = 0
    fc.assert(fc.property(fc.array(opArb, { minLength: 40, maxLength: 240, size: 'max' }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: N, maxLength: N }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: N, maxLength: N }), fc.boolean(), (ops, cut1, cut2, reopen) => {
      const w = build(ops)
      // what would reopen a sealed release: aborting every release still open brings back the
      // sealed ones they superseded, were they not final
      const floor = sealedBelow(w.state, w.m)
      if (reopen && floor > 0) {
        for (const id of w.releases) if ((effectiveRelease(w.state, w.m, id)?.body.number ?? 0) >= floor) w.write(0, 'release-control', { release: id, action: 'abort' })
      }
      const log = w.entries
      const last = new Map<string, number>()
      for (const e of log) last.set(e.entry.feed, e.entry.seq)
      const held = (feed: string): number => last.get(feed) ?? -1
      // a cover is any per-feed prefix (-1: the feed is not covered, as a forked feed is left out)
      const coverAt = (cut: number[], floor?: Cover): Cover => new Map(ids.map((id, i) => {
        const seq = Math.floor(cut[i] * (held(id) + 2)) - 1
        return [id, Math.max(seq, floor?.get(id) ?? -1)]
      }))
      const c1 = coverAt(cut1)
      // the joiner adopted a checkpoint sealing what the counted checkpoints of the log seal
      // (its own among them): the most a checkpoint may seal and still count
      const sealed = sealedBelow(w.state, w.m)
      if (sealed > 0) sealing++
      const joined = fromCheckpoint(log, c1, log, sealed)
      unsealed += fromCheckpoint(log, c1, log).filter(e => covered(c1, e)).length
      kept += joined.filter(e => covered(c1, e)).length
      total += log.filter(e => covered(c1, e)).length
      const roomIds = w.rooms.map(r => r.id)
      const whole = observe(log, held, ids, w.releases, roomIds)
      assert.deepStrictEqual(observe(joined, held, ids, w.releases, roomIds), whole)

      // a second checkpoint computed from what the first left keeps no more than one over
      // everything (less when an id sealed at the first cover is used again above the floor
      // before the second: the outcomes the first dropped stay dropped) and decides the same
      const c2 = coverAt(cut2, c1)
      const again = fromCheckpoint(log, c2, joined, sealed)
      const full = new Set(fromCheckpoint(log, c2, log, sealed).map(e => refKey(e.entry.feed, e.entry.seq)))
      assert.ok(again.every(e => full.has(refKey(e.entry.feed, e.entry.seq))))
      assert.deepStrictEqual(observe(again, held, ids, w.releases, roomIds), whole)
    }), { seed: SEED, numRuns: RUNS })
    // the rule keeps less than everything, or this property would prove nothing about pruning
    assert.ok(kept < total, `kept ${kept} of ${total} covered entries`)
    // and sealing keeps less again, in runs enough to mean something
    assert.ok(sealing > RUNS / 4 && kept < unsealed, `sealed in ${sealing} of ${RUNS} runs; kept ${kept} sealed, ${unsealed} unsealed`)
  })
})
