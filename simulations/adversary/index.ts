// `npm run sim -- adversary [--quick]`: a small fleet of real daemon processes — honest hosts
// (3, 2 with --quick), an admin `x` and an admitted member `r` — then `r` restarted on its own
// data dir with modified code (attacker.ts) runs every network-reachable attack of issue 13:
// rooms (rooms.ts), the audit log (audit.ts), and from outside the member set (outsiders.ts).
// Afterwards: the honest hosts hold the same log and fold the same rooms, no "secret" message
// opened under any key the attacker could get (its eavesdropper keeps every frame it is sent or
// can fetch), and their heap, per their own /metrics sampled all along, stayed within 64 MiB.
import { Fleet } from '../harness/fleet.js'
import type { BenchResult } from '../bench.js'
import { Attacker } from './attacker.js'
import { announcementFloods, forgedEntries } from './audit.js'
import { digest, eventually, HeapWatch, type Outcome } from './observe.js'
import { pairingFlood, revokedReconnects } from './outsiders.js'
import { removal, roomFloods, setUpRooms, takeover, type RoomsCast } from './rooms.js'

export async function run (args: string[]): Promise<BenchResult> {
  const quick = args.includes('--quick')
  const honestNames = quick ? ['a', 'b'] : ['a', 'b', 'c']
  const fleet = await Fleet.create({ hosts: [...honestNames.map((name) => ({ name, role: 'admin' as const })), { name: 'x', role: 'admin' }, { name: 'r' }] })
  const say = (line: string): void => { process.stderr.write(`adversary: ${line}\n`) }
  try {
    await fleet.pairAll()
    const honest = honestNames.map((n) => fleet.host(n))
    const cast: RoomsCast = { admin: honest[0], remover: fleet.host('x'), honest }
    const meshId = (await honest[0].json<{ mesh: { id: string } }>(['status'])).mesh.id
    await fleet.stop('r')
    const m = await Attacker.open(fleet.host('r').dataDir)
    const heap = new HeapWatch(honest)
    const outcomes: Outcome[] = []
    const record = (o: Outcome[]): void => {
      for (const x of o) say(`${x.blocked ? 'blocked' : 'NOT BLOCKED'}: ${x.attack}`)
      outcomes.push(...o)
    }
    let leaked: number
    try {
      for (const h of [...honest, cast.remover]) await m.dial(h.address)
      const rooms = await setUpRooms(m, cast, honest.map((h, i) => `${h.peerId}:${['alice', 'bob', 'carol'][i]}`))
      record([await takeover(m, cast, rooms)])
      record(await removal(m, cast, rooms))
      record(await forgedEntries(m, honest))
      // what the attacker can fetch of every room's history, before the floods spend its budget
      for (const id of Object.values(rooms)) for (const h of honest) await m.fetchHistory(id, h.peerId)
      record(await roomFloods(m, cast, rooms, heap, quick ? 300 : 600))
      record(await announcementFloods(m, heap, quick ? 50 : 200))
      record([await pairingFlood(honest[1], meshId, quick ? 30 : 60)])
      record([await revokedReconnects(m, cast.admin, honest)])
      const read = await m.decrypted()
      // the eavesdropper works: it reads what was sent to it
      if (!read.some((p) => p.room === rooms.shared && p.text.startsWith('shared '))) throw new Error('the attacker read nothing of its own room: the leak count proves nothing')
      leaked = new Set(read.filter((p) => p.text.startsWith('secret ')).map((p) => p.text)).size
    } finally {
      await m.close()
    }
    const growth = await heap.stop()
    const agree = await eventually(async () => new Set(await Promise.all(honest.map(digest))).size === 1, 60_000)
    return {
      sim: 'adversary',
      attacks: outcomes.length,
      blocked: outcomes.filter((o) => o.blocked).length,
      leaked_plaintexts: leaked,
      max_heap_growth_mib: Math.round(growth * 10) / 10,
      honest_hosts_agree: agree
    }
  } finally {
    await fleet.close()
  }
}
