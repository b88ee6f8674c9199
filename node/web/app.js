// The live fleet view: renders each snapshot the node streams on /v1/events. Built with DOM
// calls only (never innerHTML), so names and paths from the log cannot inject markup.
// The page holds no token: the control API traded it for an HttpOnly session cookie and
// redirected here, so it is in neither the address bar, the history nor a script's reach.
// Waves are numbered from 1, as `fleetmesh release status` numbers them.
const $ = (sel) => document.querySelector(sel)
/** as node/host-names.ts shortId: a host that is no member has no label in the snapshot */
const short = (peer) => peer.length > 16 ? `${peer.slice(0, 8)}…${peer.slice(-6)}` : peer
const time = (ms) => new Date(ms).toLocaleTimeString()
/** /nix/store/HASH-name → name: what tells generations apart to a person */
const storeName = (path) => /^\/nix\/store\/[0-9a-z]{32}-(.+)$/.exec(path ?? '')?.[1] ?? path ?? '?'
const duration = (ms) => ms % 60_000 === 0 && ms > 0 ? `${ms / 60_000}m` : `${ms / 1000}s`
let names = new Map()
const hostName = (peer) => names.get(peer) ?? short(peer)

function el (tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v
    else if (k === 'style') Object.assign(node.style, v)
    else node.setAttribute(k, String(v))
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c))
  return node
}

function replaceRows (tbody, rows) {
  tbody.replaceChildren(...rows)
}

function renderMembers (snap) {
  names = new Map(snap.members.map((m) => [m.peerId, m.label]))
  replaceRows($('#members tbody'), snap.members.map((m) => el('tr', { 'data-peer': m.peerId, 'data-online': m.online },
    el('td', {}, el('span', { class: m.online ? 'dot' : 'dot off', title: m.online ? 'online' : 'offline' })),
    el('td', { class: 'host-name', title: m.peerId }, el('code', {}, hostName(m.peerId)), m.self ? el('span', { class: 'empty' }, ' (this host)') : null),
    el('td', {}, m.role),
    el('td', {}, m.tags.join(', ')),
    el('td', { class: 'generation', title: m.generation === undefined ? 'has applied nothing through fleetmesh' : `${m.generation.path} (its ${m.generation.kind} #${m.generation.seq})` },
      m.generation === undefined ? el('span', { class: 'empty' }, '—') : el('code', {}, storeName(m.generation.path)))
  )))
}

function bar (w) {
  const pct = (n) => `${w.hosts === 0 ? 0 : (100 * n) / w.hosts}%`
  return el('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': w.hosts, 'aria-valuenow': w.healthy },
    el('span', { class: 'healthy', style: { width: pct(w.healthy) } }),
    el('span', { class: 'applying', style: { width: pct(w.applying + w.soaking) } }),
    el('span', { class: 'failed', style: { width: pct(Math.min(w.failed, w.hosts - w.healthy - w.applying - w.soaking)) } }),
    el('span', { class: 'offline', style: { width: pct(w.offline) } })
  )
}

function counts (w) {
  const parts = [`${w.healthy}/${w.hosts} healthy`]
  for (const k of ['applying', 'soaking', 'pending', 'failed', 'offline', 'pinned']) if (w[k] > 0) parts.push(`${w[k]} ${k}`)
  return parts.join(', ') + (w.gateMet ? ' · gate met' : ` · gate needs ${w.need}`)
}

function renderWave (r, w) {
  const spec = r.plan[w.index]
  return el('div', { class: 'wave-box' },
    el('div', { class: 'wave', 'data-wave': w.index, 'data-healthy': w.healthy, 'data-hosts': w.hosts, 'data-gate-met': w.gateMet },
      el('span', { class: 'wave-name' }, `wave ${w.index + 1}`),
      bar(w),
      el('span', {}, counts(w))),
    spec !== undefined ? el('div', { class: 'wave-spec empty' }, `${spec.selector} · gate healthy ${spec.healthy}%${spec.soakMs > 0 ? `, soak ${duration(spec.soakMs)}` : ''}`) : null,
    w.hostStates.length > 0
      ? el('div', { class: 'hosts' }, ...w.hostStates.map((h) => el('span', { class: `host ${h.state}`, 'data-host': h.host, 'data-state': h.state, title: `${h.host}: ${h.state}${h.superseded ? ', superseded by a newer release' : ''}` },
        `${hostName(h.host)}: ${h.state}`)))
      : null
  )
}

function renderRelease (r) {
  const extra = []
  if (r.budget !== undefined) extra.push(['budget', `in flight ${r.budget.inFlight} of at most ${r.budget.max}`])
  for (const b of r.budgets ?? []) extra.push(['budget', `budget ${b.selector}: ${b.inFlight.length} of at most ${b.max} in flight${b.inFlight.length > 0 ? ` (${b.inFlight.map(hostName).join(', ')})` : ''}`])
  if (r.quarantinedPaths.length > 0) extra.push(['quarantined', `quarantined: ${r.quarantinedPaths.map(storeName).join(', ')}`])
  if (r.unassigned.length > 0) extra.push(['unassigned', `in no wave: ${r.unassigned.map(hostName).join(', ')}`])
  if (r.staleHosts.length > 0) extra.push(['stale', `stale: ${r.staleHosts.map(hostName).join(', ')}`])
  return el('div', { class: 'release', 'data-release': r.id, 'data-state': r.state },
    el('h3', {}, `${r.id} `, el('span', { class: `state ${r.state}` }, r.state),
      el('span', { class: 'empty' }, ` · #${r.number} by ${hostName(r.signer)} · failures ${r.failed}/${r.maxFailures}`)),
    r.reason !== undefined ? el('p', { class: 'reason' }, r.reason) : null,
    el('p', { class: 'targets' }, ...r.targets.map((t) => el('span', { class: 'target', title: t.path },
      `${t.tag !== undefined ? `tag:${t.tag}` : t.host !== undefined ? `host:${hostName(t.host)}` : 'every host'} → `, el('code', {}, storeName(t.path))))),
    ...r.waves.map((w) => renderWave(r, w)),
    ...extra.map(([cls, text]) => el('p', { class: `empty ${cls}` }, text))
  )
}

function renderReleases (snap) {
  const box = $('#releases')
  if (snap.releases.length === 0) box.replaceChildren(el('p', { class: 'empty' }, 'no releases yet'))
  else box.replaceChildren(...snap.releases.map(renderRelease))
}

function renderHolds (snap) {
  const rows = [
    ...snap.pins.map((p) => el('tr', { class: 'pin', 'data-host': p.host },
      el('td', {}, 'pin'), el('td', {}, hostName(p.host)),
      el('td', { title: p.path }, el('code', {}, storeName(p.path))),
      el('td', {}, `${p.reason} (by ${hostName(p.by)}${p.expiresMs !== undefined ? `, expires ${duration(p.expiresMs)} after the host saw it` : ''})`))),
    ...snap.quarantined.map((q) => el('tr', { class: 'quarantine', 'data-path': q.path },
      el('td', {}, 'quarantine'), el('td', {}, 'every host'),
      el('td', { title: q.path }, el('code', {}, storeName(q.path))),
      el('td', {}, q.reasons.join('; '))))
  ]
  replaceRows($('#holds tbody'), rows.length > 0 ? rows : [el('tr', {}, el('td', { colspan: 4, class: 'empty' }, 'no pins or quarantines'))])
}

function agentDetail (a) {
  const parts = []
  if (a.restarts > 0) parts.push(`${a.restarts} restart(s)`)
  if (a.code !== undefined) parts.push(`exit code ${a.code}`)
  if (a.signal !== undefined) parts.push(a.signal)
  if (a.release !== undefined) parts.push(`failed release ${a.release}`)
  if (a.reason !== undefined) parts.push(a.reason)
  return parts.join(' · ')
}

function renderAgents (snap) {
  const rows = snap.agents.map((a) => el('tr', { 'data-host': a.host, 'data-agent': a.agent, 'data-state': a.state },
    el('td', { title: a.host }, hostName(a.host)),
    el('td', {}, el('code', {}, a.agent)),
    el('td', {}, el('span', { class: `agent-state ${a.state}` }, a.state)),
    el('td', { title: `${a.event}, entry #${a.seq}` }, `${agentDetail(a)}${agentDetail(a) === '' ? '' : ' · '}since ${time(a.ts)}`)))
  replaceRows($('#agents tbody'), rows.length > 0 ? rows : [el('tr', {}, el('td', { colspan: 4, class: 'empty' }, 'no agents have reported'))])
}

/** What an entry says, per kind: the fields that matter to a person reading the trail. */
function detail (e) {
  const b = e.body ?? {}
  if (e.kind === 'release') {
    const targets = (b.targets ?? []).map((t) => `${t.tag !== undefined ? `tag:${t.tag}` : t.host !== undefined ? `host:${hostName(t.host)}` : '*'}=${storeName(t.path)}`)
    const waves = (b.waves ?? []).map((w, i) => `${i + 1}:${w.hosts !== undefined ? `host:${w.hosts.map(hostName).join('+')}` : w.tag !== undefined ? `tag:${w.tag}` : w.percent !== undefined ? `${w.percent}%` : w.count}` +
      ` healthy=${w.gate?.healthy}%${w.gate?.soakMs > 0 ? `,soak=${duration(w.gate.soakMs)}` : ''}`)
    return `${b.id} #${b.number} targets ${targets.join(' ')} · waves ${waves.join(' | ')} · max failures ${b.maxFailures}`
  }
  if (e.kind === 'witness') {
    if (b.v === 2) return `witnessed the heads of ${b.count} feed(s) · root ${String(b.root?.$hex ?? '').slice(0, 16)}…`
    const heads = b.heads ?? []
    return `witnessed ${heads.length} head(s): ${heads.slice(0, 6).map((h) => `${hostName(h[0])}#${h[1]}`).join(', ')}${heads.length > 6 ? ', …' : ''}`
  }
  if (e.kind === 'agent') return `${b.agent} ${b.event}${b.reason !== undefined ? `: ${b.reason}` : ''}${b.code !== undefined ? ` (code ${b.code})` : ''}${b.signal !== undefined ? ` (${b.signal})` : ''}`
  return ['release', 'path', 'wave', 'host', 'peer', 'name', 'role', 'action', 'check', 'state', 'what', 'outcome', 'reason', 'ok'].filter((k) => b[k] !== undefined)
    .map((k) => `${k}=${k === 'wave' && typeof b[k] === 'number' ? b[k] + 1 : typeof b[k] === 'object' ? JSON.stringify(b[k]) : k === 'path' ? storeName(b[k]) : k === 'host' || k === 'peer' ? hostName(b[k]) : b[k]}`).join(' ')
}

function renderAudit (snap) {
  replaceRows($('#audit tbody'), snap.audit.map((e) => el('tr', { 'data-kind': e.kind },
    el('td', {}, time(e.ts)),
    el('td', { title: e.feed }, el('code', {}, hostName(e.feed))),
    el('td', {}, e.seq),
    el('td', {}, e.kind),
    el('td', { class: 'detail' }, el('code', {}, detail(e)))
  )))
}

function driftLine (d) {
  const parts = d.what.map((w) => {
    if (w === 'activation') return `activated system ${d.activated ?? '?'}${d.desired !== undefined ? `, not ${d.desired}` : d.profile !== undefined ? `, not the profile's ${d.profile}` : ''}`
    if (w === 'profile') return `profile on ${d.profile ?? 'nothing'}, not ${d.desired ?? '?'}`
    return `${d.modifiedCount ?? '?'} store path(s) modified`
  })
  const repair = d.state === 'repair' ? ` · repair ${d.outcome}` : ''
  return el('li', { class: 'drift', 'data-peer': d.peer, 'data-what': d.what.join(',') }, `drift on ${hostName(d.peer)}: ${parts.join('; ')}${repair} (since ${time(d.ts)})`)
}

/**
 * Whatever needs a person: a forked feed, a flagged entry, drift, a failed agent, a halted
 * release. (Failures used to show only inside their release, so the panel stayed hidden.)
 */
function renderAlerts (snap) {
  const box = $('#alerts')
  const lines = [
    ...snap.equivocations.map((q) => el('li', {}, `feed ${hostName(q.feed)} signed two different entries at seq ${q.seq} (seen ${time(q.detectedAt)})`)),
    ...snap.flagged.map((f) => el('li', {}, `${f.kind} ${hostName(f.feed)}#${f.seq} flagged: ${f.reason}`)),
    ...snap.drift.map(driftLine),
    ...snap.agents.filter((a) => a.state === 'failed' || a.state === 'escalated').map((a) => el('li', { class: 'agent', 'data-host': a.host, 'data-agent': a.agent },
      `agent ${a.agent} on ${hostName(a.host)} ${a.state === 'escalated' ? `crash-looped and failed release ${a.release ?? '?'}` : 'crash-looped and is not restarted until an operator does'}${a.reason !== undefined ? `: ${a.reason}` : ''}`)),
    ...snap.releases.filter((r) => r.state === 'halted').map((r) => el('li', { class: 'release', 'data-release': r.id },
      `release ${r.id} halted${r.reason !== undefined ? `: ${r.reason}` : ''}${r.failedHosts.length > 0 ? ` (failed on ${r.failedHosts.map(hostName).join(', ')})` : ''}`))
  ]
  box.hidden = lines.length === 0
  box.replaceChildren(el('h2', {}, 'Alerts'), el('ul', {}, ...lines))
}

function render (snap) {
  $('#mesh').textContent = snap.mesh === null ? '(no mesh)' : `— ${snap.mesh.name}`
  $('#updated').textContent = `· ${time(snap.at)}`
  // members first: every other panel names hosts by them; alerts next, so nothing below can hide them
  for (const panel of [renderMembers, renderAlerts, renderReleases, renderHolds, renderAgents, renderAudit]) {
    try {
      panel(snap)
    } catch (err) {
      console.error(`fleet view: ${panel.name}: ${err.message}`)
    }
  }
  $('#self').textContent = `viewed from ${hostName(snap.self)}`
}

const events = new EventSource('/v1/events')
events.addEventListener('open', () => { $('#link').className = 'dot' })
events.addEventListener('error', () => { $('#link').className = 'dot off' })
events.addEventListener('snapshot', (evt) => { render(JSON.parse(evt.data)) })
