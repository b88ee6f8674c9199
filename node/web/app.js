// The live fleet view: renders each snapshot the node streams on /v1/events. Built with DOM
// calls only (never innerHTML), so names and paths from the log cannot inject markup.
// The page holds no token: the control API traded it for an HttpOnly session cookie and
// redirected here, so it is in neither the address bar, the history nor a script's reach.
const $ = (sel) => document.querySelector(sel)
const short = (peer) => peer.length > 14 ? `…${peer.slice(-8)}` : peer
const time = (ms) => new Date(ms).toLocaleTimeString()
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
  names = new Map(snap.members.map((m) => [m.peerId, `${short(m.peerId)}${m.self ? ' (this host)' : ''}`]))
  replaceRows($('#members tbody'), snap.members.map((m) => el('tr', { 'data-peer': m.peerId, 'data-online': m.online },
    el('td', {}, el('span', { class: m.online ? 'dot' : 'dot off', title: m.online ? 'online' : 'offline' })),
    el('td', { title: m.peerId }, el('code', {}, hostName(m.peerId))),
    el('td', {}, m.role),
    el('td', {}, m.tags.join(', '))
  )))
}

function bar (w) {
  const pct = (n) => `${w.hosts === 0 ? 0 : (100 * n) / w.hosts}%`
  return el('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': w.hosts, 'aria-valuenow': w.healthy },
    el('span', { class: 'healthy', style: { width: pct(w.healthy) } }),
    el('span', { class: 'applying', style: { width: pct(w.applying) } }),
    el('span', { class: 'failed', style: { width: pct(Math.min(w.failed, w.hosts - w.healthy - w.applying)) } }),
    el('span', { class: 'offline', style: { width: pct(w.offline) } })
  )
}

function renderRelease (r) {
  const waves = r.waves.map((w) => el('div', { class: 'wave', 'data-wave': w.index, 'data-healthy': w.healthy, 'data-hosts': w.hosts, 'data-gate-met': w.gateMet },
    el('span', {}, `wave ${w.index + 1}`),
    bar(w),
    el('span', {}, `${w.healthy}/${w.hosts} healthy` + (w.applying > 0 ? `, ${w.applying} applying` : '') + (w.failed > 0 ? `, ${w.failed} failed` : '') +
      (w.offline > 0 ? `, ${w.offline} offline` : '') + (w.gateMet ? ' · gate met' : ''))
  ))
  const hosts = r.hosts.map((h) => el('span', { class: `host ${h.state}`, title: `${h.peer}: ${h.state} at ${time(h.ts)}` },
    `${hostName(h.peer)}${h.wave !== null && h.wave >= 0 ? ` w${h.wave + 1}` : ''}: ${h.state}`))
  return el('div', { class: 'release', 'data-release': r.id, 'data-state': r.state },
    el('h3', {}, `${r.id} `, el('span', { class: `state ${r.state}` }, r.state),
      r.reason !== undefined ? el('span', { class: 'empty' }, ` ${r.reason}`) : null,
      el('span', { class: 'empty' }, ` · #${r.number} by ${hostName(r.signer)} · failures ${r.failed}/${r.maxFailures}`)),
    ...waves,
    hosts.length > 0 ? el('div', { class: 'hosts' }, ...hosts) : null
  )
}

function renderReleases (snap) {
  const box = $('#releases')
  if (snap.releases.length === 0) box.replaceChildren(el('p', { class: 'empty' }, 'no releases yet'))
  else box.replaceChildren(...snap.releases.map(renderRelease))
}

function detail (e) {
  const b = e.body ?? {}
  return ['release', 'path', 'wave', 'peer', 'role', 'action', 'check', 'state', 'what', 'outcome', 'reason', 'ok'].filter((k) => b[k] !== undefined).map((k) => `${k}=${typeof b[k] === 'object' ? JSON.stringify(b[k]) : b[k]}`).join(' ')
}

function renderAudit (snap) {
  replaceRows($('#audit tbody'), snap.audit.map((e) => el('tr', { 'data-kind': e.kind },
    el('td', {}, time(e.ts)),
    el('td', { title: e.feed }, el('code', {}, hostName(e.feed))),
    el('td', {}, e.seq),
    el('td', {}, e.kind),
    el('td', {}, el('code', {}, detail(e)))
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

function renderAlerts (snap) {
  const box = $('#alerts')
  const lines = [
    ...snap.equivocations.map((q) => el('li', {}, `feed ${hostName(q.feed)} signed two different entries at seq ${q.seq} (seen ${time(q.detectedAt)})`)),
    ...snap.flagged.map((f) => el('li', {}, `${f.kind} ${hostName(f.feed)}#${f.seq} flagged: ${f.reason}`)),
    ...(snap.drift ?? []).map(driftLine)
  ]
  box.hidden = lines.length === 0
  box.replaceChildren(el('h2', {}, 'Alerts'), el('ul', {}, ...lines))
}

function render (snap) {
  $('#mesh').textContent = snap.mesh === null ? '(no mesh)' : `— ${snap.mesh.name}`
  $('#self').textContent = `viewed from ${short(snap.self)}`
  $('#updated').textContent = `· ${time(snap.at)}`
  renderMembers(snap)
  renderReleases(snap)
  renderAudit(snap)
  renderAlerts(snap)
}

const events = new EventSource('/v1/events')
events.addEventListener('open', () => { $('#link').className = 'dot' })
events.addEventListener('error', () => { $('#link').className = 'dot off' })
events.addEventListener('snapshot', (evt) => { render(JSON.parse(evt.data)) })
