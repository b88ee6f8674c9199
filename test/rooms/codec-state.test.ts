import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeCanonical } from '../../protocols/canonical.js'
import { SEALED_EPOCH_KEY_BYTES } from '../../crypto/seal.js'
import {
  decodeFrame, encodeFrame, validateRoomCreate, validateRoomMember, applyRoomEntry, createRoomsState, foldRoom, admitMessage, roomIdFor,
  MAX_KEYS_PER_ENTRY, type SignedRoomMessage, type StandingAt
} from '../../protocols/rooms/index.js'
import { decodeHistoryRequest, decodeHistoryResponse, MAX_FRAME_BYTES } from '../../protocols/rooms/codec.js'
import { entry, peers, rng, shuffled } from '../membership/helpers.js'
import type { Entry } from '../../protocols/audit/index.js'

const ROOM = 'ab'.repeat(16)
const NONCE = new Uint8Array(16).fill(7)
const kid = (n: number): Uint8Array => new Uint8Array(16).fill(n)
const sealed = (host: string, epoch: number): { host: string, epoch: number, sealed: Uint8Array } => ({ host, epoch, sealed: new Uint8Array(SEALED_EPOCH_KEY_BYTES) })

test('frames: round trip; truncated, oversize, non-canonical and malformed input each refused with a typed code', () => {
  const [host] = ['12D3KooWLRPJAA5o6Z6e1Fv1vcmc3oi5WfKoAm1wQTr5YYBcpbnN']
  const msg: SignedRoomMessage = { room: ROOM, epoch: 2, sender: host!, agent: 'bot', seq: 7, ts: 1_700_000_000_000, ciphertext: new Uint8Array(80), sig: new Uint8Array(64) }
  const bytes = encodeFrame(msg)
  assert.deepEqual(decodeFrame(bytes), msg)
  assert.throws(() => decodeFrame(bytes.subarray(0, bytes.length - 1)), { code: 'ROOM_FRAME_MALFORMED' })
  assert.throws(() => decodeFrame(new Uint8Array(MAX_FRAME_BYTES + 1)), { code: 'ROOM_FRAME_TOO_LARGE' })
  assert.throws(() => decodeFrame(Uint8Array.of(0xff)), { code: 'ROOM_FRAME_MALFORMED' })
  const fields = { v: 1, room: ROOM, epoch: 2, sender: host, agent: 'bot', seq: 7, ts: 1, ct: new Uint8Array(80), sig: new Uint8Array(64) }
  for (const broken of [
    { ...fields, extra: 1 }, { ...fields, v: 2 }, { ...fields, room: 'ROOM' }, { ...fields, agent: 'a/b' }, { ...fields, seq: -1 },
    { ...fields, ct: new Uint8Array(10) }, { ...fields, sig: new Uint8Array(63) }, { ...fields, sender: 'QmNotEd25519' }
  ]) assert.throws(() => decodeFrame(encodeCanonical(broken)), { code: 'ROOM_FRAME_MALFORMED' })
  // one byte of trailing garbage after a valid frame
  assert.throws(() => decodeFrame(Uint8Array.of(...bytes, 0)), { code: 'ROOM_FRAME_MALFORMED' })
  assert.throws(() => decodeHistoryRequest(encodeCanonical({ room: ROOM, since: -5 })), { code: 'ROOM_FRAME_MALFORMED' })
  assert.throws(() => decodeHistoryResponse(encodeCanonical({ t: 'msgs', msgs: [] })), { code: 'ROOM_FRAME_MALFORMED' })
  assert.throws(() => decodeHistoryResponse(encodeCanonical({ t: 'what' })), { code: 'ROOM_FRAME_MALFORMED' })
})

test('entry bodies: schemas refuse unknown fields, bad keys, too many keys and duplicate members', async () => {
  const [a, b] = await peers(2)
  const good = { room: ROOM, name: 'ops', history: 'joined', members: [{ host: a!, agent: 'x' }], nonce: NONCE, epoch: 0, kid: kid(1), keys: [sealed(a!, 0)] }
  assert.equal(validateRoomCreate(good).name, 'ops')
  for (const bad of [
    { ...good, extra: true }, { ...good, epoch: 1 }, { ...good, nonce: NONCE.subarray(1) }, { ...good, nonce: undefined }, { ...good, history: 'all' }, { ...good, members: [] },
    { ...good, members: [{ host: a!, agent: 'x' }, { host: a!, agent: 'x' }] }, { ...good, kid: kid(1).subarray(1) },
    { ...good, keys: [{ ...sealed(a!, 0), sealed: new Uint8Array(10) }] }, { ...good, keys: [sealed(a!, 0), sealed(a!, 0)] },
    { ...good, keys: Array.from({ length: MAX_KEYS_PER_ENTRY + 1 }, () => sealed(a!, 0)).map((k, i) => ({ ...k, epoch: i })) }
  ]) assert.throws(() => validateRoomCreate(bad), { code: 'ROOM_BODY_INVALID' })
  assert.throws(() => validateRoomMember({ room: ROOM, op: 'kick', member: { host: b!, agent: 'y' }, epoch: 1, kid: kid(2), keys: [] }), { code: 'ROOM_BODY_INVALID' })
  assert.throws(() => validateRoomMember({ room: ROOM, op: 'add', member: { host: b!, agent: 'y' }, epoch: 0, kid: kid(2), keys: [sealed(b!, 1)] }), { code: 'ROOM_BODY_INVALID' })
})

test('the fold is order-independent; concurrent changes are kept, flagged stale, and non-managers count for nothing', async () => {
  // sorted: the creator's feed comes before b's, so its change wins the race for epoch 1
  const [creator, b, c, d, outsider] = (await peers(5)).sort()
  const ROOM = roomIdFor(creator!, NONCE)
  const log: Entry[] = [
    entry(creator!, 0, 1000, 'room-create', { room: ROOM, nonce: NONCE, name: 'ops', history: 'joined', members: [{ host: creator!, agent: 'a' }, { host: b!, agent: 'b' }, { host: c!, agent: 'c' }], epoch: 0, kid: kid(0), keys: [sealed(creator!, 0), sealed(b!, 0), sealed(c!, 0)] }),
    // the creator removes c (epoch 1) while an admin, b, concurrently adds d at epoch 1 too
    entry(creator!, 1, 2000, 'room-member', { room: ROOM, op: 'remove', member: { host: c!, agent: 'c' }, epoch: 1, kid: kid(1), keys: [sealed(creator!, 1), sealed(b!, 1)] }),
    entry(b!, 0, 2001, 'room-member', { room: ROOM, op: 'add', member: { host: d!, agent: 'd' }, epoch: 1, kid: kid(2), keys: [sealed(creator!, 1), sealed(b!, 1), sealed(c!, 1), sealed(d!, 1)] }),
    // a non-manager's change is ignored
    entry(outsider!, 0, 1500, 'room-member', { room: ROOM, op: 'add', member: { host: outsider!, agent: 'o' }, epoch: 1, kid: kid(9), keys: [sealed(outsider!, 1)] })
  ]
  const standing: StandingAt = (feed) => ({ member: true, admin: feed === b })
  const folds = [0, 1, 2, 3, 4, 5].map(seed => {
    const state = createRoomsState()
    for (const e of shuffled(log, rng(seed))) applyRoomEntry(state, e)
    return foldRoom(state, ROOM, standing)!
  })
  const r = folds[0]!
  for (const f of folds) assert.deepEqual({ ...f, epochs: [...f.epochs] }, { ...r, epochs: [...r.epochs] })
  assert.equal(r.epoch, 1)
  assert.deepEqual(r.epochs.get(1)!.kid, kid(1), 'the first change of an epoch in (feed, seq) order names its key, whatever the claimed times')
  assert.deepEqual(r.members.map(m => m.agent).sort(), ['a', 'b', 'd'])
  assert.equal(r.members.some(m => m.host === c), false, 'the concurrent removal is not lost')
  assert.equal(r.members.some(m => m.host === outsider), false)
  assert.deepEqual(r.missing, [d].sort(), 'd was added but holds no key of the winning epoch 1')
  assert.deepEqual(r.leaked, [])
  // c was a member of epoch 0 only; its epoch-0 messages are taken until the host closes epoch 0
  const open = (): boolean => false
  const closed = (): boolean => true
  assert.equal(admitMessage(r, { epoch: 0, sender: c!, agent: 'c' }, open), undefined)
  assert.equal(admitMessage(r, { epoch: 0, sender: c!, agent: 'c' }, closed), 'ROOM_STALE_EPOCH')
  assert.equal(admitMessage(r, { epoch: 1, sender: c!, agent: 'c' }, open), 'ROOM_NOT_MEMBER')
  assert.equal(admitMessage(r, { epoch: 1, sender: b!, agent: 'b' }, closed), undefined, 'the current epoch never closes')
  assert.equal(admitMessage(r, { epoch: 2, sender: b!, agent: 'b' }, open), 'ROOM_UNKNOWN_EPOCH')
  assert.equal(admitMessage(r, { epoch: 1, sender: b!, agent: 'z' }, open), 'ROOM_NOT_MEMBER')
})

test('the fold judges each entry by its author\'s standing at it: no other feed\'s create, no rollback on revoke', async () => {
  const [creator, admin, r, m] = await peers(4)
  const ROOM = roomIdFor(creator!, NONCE)
  const create = (feed: string, seq: number, ts: number, nonce = NONCE): Entry => entry(feed, seq, ts, 'room-create', {
    room: ROOM, nonce, name: 'ops', history: 'joined', members: [{ host: feed, agent: 'a' }, { host: r!, agent: 'r' }], epoch: 0, kid: kid(seq + 1), keys: [sealed(feed, 0), sealed(r!, 0)]
  })
  const log: Entry[] = [
    create(creator!, 3, 5000),
    // m copies the id and nonce and dates its create earlier: its feed does not derive the id
    create(m!, 0, 1),
    // the creator writes a second create of its own id later in its feed: the first by seq holds
    create(creator!, 4, 10),
    // an admin removes r (epoch 1)
    entry(admin!, 7, 6000, 'room-member', { room: ROOM, op: 'remove', member: { host: r!, agent: 'r' }, epoch: 1, kid: kid(20), keys: [sealed(creator!, 1)] }),
    // written past the admin's revoke: void
    entry(admin!, 9, 7000, 'room-member', { room: ROOM, op: 'add', member: { host: m!, agent: 'm' }, epoch: 2, kid: kid(21), keys: [sealed(creator!, 2), sealed(m!, 2)] })
  ]
  // the admin was revoked with after = 8, and demoted at ts 6500: standing as of each entry
  const standing: StandingAt = (feed, seq, ts) => feed === admin
    ? { member: seq <= 8, admin: seq <= 8 && ts < 6500 }
    : { member: true, admin: false }
  const state = createRoomsState()
  for (const e of log) applyRoomEntry(state, e)
  const room = foldRoom(state, ROOM, standing)!
  assert.equal(room.creator, creator)
  assert.deepEqual(room.epochs.get(0)!.kid, kid(4), 'the create at the creator\'s lowest seq')
  assert.equal(room.epoch, 1, 'the removal counts, the add written past the revoke does not')
  assert.deepEqual(room.members.map(x => x.host), [creator])
  // a feed that was no member when it wrote its create has no room
  assert.equal(foldRoom(state, ROOM, (feed) => ({ member: feed !== creator, admin: false })), undefined)
  // m's own id, with m's nonce, is m's room
  const mine = createRoomsState()
  applyRoomEntry(mine, entry(m!, 0, 1, 'room-create', { ...(log[1]!.body as object), room: roomIdFor(m!, NONCE) }))
  assert.equal(foldRoom(mine, roomIdFor(m!, NONCE), standing)?.creator, m)
})
