// What an operator watches: Prometheus metrics fed from the node's own events, served at
// /metrics on the control API.
import type { MeshNode } from './mesh.js'

export function attachObservability (node: MeshNode): void {
  const m = node.metrics
  const refresh = (): void => {
    m.peersConnected.set(node.libp2p.getPeers().length)
    m.members.set(node.membership.view()?.members.size ?? 0)
    m.equivocations.set(node.store.forkedFeeds().size)
  }
  node.store.on('entry', (s) => {
    m.logEntries.inc({ event: s.entry.feed === node.peerId ? 'appended' : 'received', reason: '' })
  })
  node.api.route('GET', '/metrics', async (_req, res) => {
    refresh()
    res.writeHead(200, { 'content-type': m.registry.contentType })
    res.end(await m.registry.metrics())
  })
}
