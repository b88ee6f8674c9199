// The live fleet view in a real headless Chromium (Debian's chromium, driven by playwright-core):
// the page is opened on a daemon's control API while a release rolls out, and the second
// wave's bar is seen to advance through SSE updates alone, without a reload. The same rollout is
// watched by `fleetmesh release status --watch` into a pipe and under a pseudo-terminal
// (util-linux `script`): one line per change in the one, redrawn in place in the other.
// Then the panels issue 14 asks for: pins, quarantines, a per-tag budget in use, and a host whose
// release is staged for its next boot (pending-reboot).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdir, readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Page } from 'playwright-core'
import { Fleet, servicePort, type FleetHost } from '../../simulations/harness/fleet.js'
import { cliArgv, runCli, type CliResult } from '../../simulations/harness/processes.js'
import { agentServing, agentUrl, generationAgent } from '../../simulations/harness/agents.js'
import type { MemberRow } from '../../node/routes.js'
import { hostLabels } from '../../node/host-names.js'
import { buildGeneration, ensureNix } from '../fixtures/nix/fixtures.js'
import { runNix } from '../../nixos/nix.js'
import { ensureDebianTool } from './observe-apt.js'

const WAIT_MS = 120_000
const SCREENSHOTS = fileURLToPath(new URL('../../out/', import.meta.url))
const storeName = (path: string): string => path.replace(/^\/nix\/store\/[0-9a-z]{32}-/, '')
const TOPLEVEL = fileURLToPath(new URL('../deploy/fixtures/toplevel.nix', import.meta.url))

/** A toplevel with a kernel link (test/deploy/fixtures/toplevel.nix): to a host running a plain generation, a kernel change. */
async function kernelGeneration (version: string): Promise<string> {
  await ensureNix()
  const { stdout } = await runNix('nix-build', [TOPLEVEL, '--no-out-link', '--argstr', 'version', version, '--argstr', 'mode', 'good', '--argstr', 'nodeBin', process.execPath, '--argstr', 'kernel', '2'])
  return stdout.trim()
}

/** `fleetmesh release status ID --watch` on `host` under a pseudo-terminal: what the terminal got. */
async function watchOnTerminal (host: FleetHost, id: string): Promise<CliResult> {
  const { NO_COLOR: _, ...env } = process.env
  const command = [process.execPath, ...cliArgv(), '--data-dir', host.dataDir, 'release', 'status', id, '--watch'].map((a) => `'${a}'`).join(' ')
  const child = spawn('script', ['-qefc', command, '/dev/null'], { env: { ...env, TERM: 'xterm' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 2 * WAIT_MS)
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 128)))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** Members as every view names them: host name (with an id suffix where shared), else a short id. */
async function labels (host: FleetHost): Promise<Map<string, string>> {
  const members = await host.get<MemberRow[]>('/v1/members')
  return hostLabels(members.map((m) => ({ peer: m.peerId, ...(m.name !== null ? { name: m.name } : {}) })))
}

/**
 * The piped watch: the block once, then lines that each move one host on from the state it was
 * last shown in (never a repeat), ending with every host healthy and the release done.
 */
function checkChangeLines (r: CliResult, id: string, label: Map<string, string>): void {
  assert.equal(r.code, 0, r.stderr)
  assert.ok(!r.stdout.includes('\x1b'), 'no escape codes into a pipe')
  const lines = r.stdout.trimEnd().split('\n')
  assert.equal(lines.filter((l) => l.startsWith(`release ${id} #`)).length, 1, `the block is printed once:\n${r.stdout}`)
  assert.deepEqual(lines.filter((l) => /^ {2}wave \d/.test(l)).map((l) => l.slice(0, 8)), ['  wave 1', '  wave 2'], 'waves numbered from 1')
  const state = new Map<string, string>()
  for (const l of lines) {
    const m = /^ {4}(\S+)\s+(\S+)$/.exec(l)
    if (m !== null) state.set(m[1], m[2])
  }
  assert.deepEqual(new Set(state.keys()), new Set(label.values()), 'every host listed under its wave by name')
  const changes = lines.filter((l) => /^\d\d:\d\d:\d\d /.test(l))
  assert.ok(changes.length > 0, `changes were seen:\n${r.stdout}`)
  for (const l of changes) {
    const m = /^\S+ (\S+) wave [12] (\S+) → (\S+)$/.exec(l)
    if (m === null) continue
    assert.equal(state.get(m[1]), m[2], `${l}: moves on from the state last shown`)
    assert.notEqual(m[2], m[3])
    state.set(m[1], m[3])
  }
  assert.deepEqual([...state.values()], ['healthy', 'healthy', 'healthy'], r.stdout)
  assert.match(changes.at(-1) ?? '', new RegExp(`^\\S+ release ${id} rolling → done$`))
}

/** Every member row names its host (name, else short id) and shows the generation it runs. */
async function checkMembers (page: Page, label: Map<string, string>, generation: string): Promise<void> {
  for (const [peer, name] of label) {
    const row = page.locator(`#members tbody tr[data-peer="${peer}"]`)
    assert.equal(await row.locator('.host-name code').textContent(), name)
    assert.equal(await row.locator('.generation code').textContent(), storeName(generation))
    assert.match(await row.locator('.generation').getAttribute('title') ?? '', new RegExp(`^${generation} \\(its apply-ok #\\d+\\)$`))
  }
}

test('the fleet view shows members by name with their generation, a rollout\'s waves and hosts advancing live (and release status --watch on a pipe and a terminal), the audit trail, pins and quarantines, a tag budget in use and a host pending reboot, every host\'s agents, and alerts for drift, a crash-looping agent and a halted release', { timeout: 10 * 60_000 }, async (t) => {
  const executablePath = await ensureDebianTool('/usr/bin/chromium', 'chromium')
  const workerPort = await servicePort()
  // b's agent: one crash more than its policy allows is a crash loop; it never fails a generation
  const worker = (h: FleetHost): ReturnType<typeof generationAgent> => ({
    ...generationAgent('worker', h.profile, workerPort, { backoffInitialMs: 100, backoffMaxMs: 1000, maxRestarts: 1, windowMs: 10 * 60_000 }), escalateWithinMs: 0
  })
  const fleet = await Fleet.create({ hosts: [{ name: 'a', role: 'admin', tags: ['web'] }, { name: 'b', tags: ['web'], agents: (h) => [worker(h)] }, { name: 'c', tags: ['web'] }], soakMs: 300 })
  const browser = await chromium.launch({ executablePath })
  try {
    await fleet.pairAll()
    const a = fleet.founder
    const { url } = JSON.parse(await readFile(join(a.dataDir, 'api.json'), 'utf8')) as { url: string }
    const token = (await readFile(join(a.dataDir, 'api-token'), 'utf8')).trim()
    const [v1, staged] = await Promise.all([buildGeneration(`view-v1-${Date.now()}`, 'good'), kernelGeneration(`view-boot-${Date.now()}`)])

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    const consoleErrors: string[] = []
    page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()) })
    page.on('pageerror', (err) => { consoleErrors.push(err.message) })
    await page.goto(`${url}/ui?token=${token}`)
    assert.ok(!page.url().includes(token), 'the page drops the token from the address bar')
    assert.equal(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie), '', 'the session cookie is out of scripts\' reach (HttpOnly)')
    // Locators, not waitForFunction: its string predicate is an eval, which the page's CSP refuses.
    const online = page.locator('#members tbody tr[data-online="true"]')
    await online.nth(2).waitFor({ timeout: WAIT_MS })
    assert.equal(await online.count(), 3)
    // Marks this document: a reload would lose it, so its survival proves the updates were live.
    await page.evaluate(() => { (globalThis as unknown as { marker: number }).marker = 1 })
    const b = fleet.host('b')
    // another host's agent, from its `agent` entries
    await page.locator(`#agents tbody tr[data-host="${b.peerId}"][data-agent="worker"][data-state="running"]`).waitFor({ timeout: WAIT_MS })

    // A soak long enough that the second wave is seen waiting on the first.
    const rel = await a.json<{ id: string }>(['release', 'publish', '--tag', 'web', '--path', v1, '--waves', '1,100%', '--gate', 'healthy=100%,soak=3s', '--max-in-flight', '2'])
    const piped = runCli(['--data-dir', a.dataDir, 'release', 'status', rel.id, '--watch'], { timeoutMs: 2 * WAIT_MS })
    const terminal = watchOnTerminal(a, rel.id)
    const wave = `[data-release="${rel.id}"] [data-wave="1"]`
    await page.waitForSelector(wave, { timeout: WAIT_MS })
    const before = Number(await page.getAttribute(wave, 'data-healthy'))
    assert.equal(Number(await page.getAttribute(wave, 'data-hosts')), 2)
    assert.equal(before, 0, 'the second wave starts empty')
    await page.waitForSelector(`[data-release="${rel.id}"] [data-wave="0"][data-healthy="1"]`, { timeout: WAIT_MS }).catch(async (err: Error) => {
      await page.screenshot({ path: join(SCREENSHOTS, 'fleet-view-failure.png'), fullPage: true }).catch(() => {})
      const status = await a.cli(['release', 'status', rel.id, '--json'])
      throw new Error(`${err.message}\nrelease status on a: ${status.stdout}${status.stderr}`)
    })
    await mkdir(SCREENSHOTS, { recursive: true })
    await page.screenshot({ path: join(SCREENSHOTS, 'fleet-view-rolling.png'), fullPage: true })

    await page.waitForSelector(`${wave}[data-healthy="2"]`, { timeout: WAIT_MS })
    await page.waitForSelector(`[data-release="${rel.id}"][data-state="done"]`, { timeout: WAIT_MS })
    const shot = join(SCREENSHOTS, 'fleet-view.png')
    await page.screenshot({ path: shot, fullPage: true })
    t.diagnostic(`screenshots: ${shot} and fleet-view-rolling.png beside it`)

    assert.equal(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker), 1, 'no reload happened')
    assert.match(await page.getAttribute(`${wave} .bar .healthy`, 'style') ?? '', /width: 100%/)
    const hostStates = await page.$$eval(`[data-release="${rel.id}"] .host`, (els) => els.map((e) => e.getAttribute('data-state')))
    assert.deepEqual(hostStates, ['healthy', 'healthy', 'healthy'])
    assert.deepEqual(await page.locator(`[data-release="${rel.id}"] .wave-name`).allTextContents(), ['wave 1', 'wave 2'])
    assert.deepEqual(await page.locator(`[data-release="${rel.id}"] .wave-spec`).allTextContents(), ['1 · gate healthy 100%, soak 3s', '100% · gate healthy 100%, soak 3s'])
    assert.equal(await page.locator(`[data-release="${rel.id}"] .target`).textContent(), `tag:web → ${storeName(v1)}`)
    assert.equal(await page.locator(`[data-release="${rel.id}"] .budget`).textContent(), 'in flight 0 of at most 2')
    const label = await labels(a)
    await checkMembers(page, label, v1)
    const kinds = await page.$$eval('#audit tbody tr', (rows) => rows.map((r) => r.getAttribute('data-kind')))
    assert.ok(kinds.filter((k) => k === 'apply-ok').length === 3, `audit rows: ${kinds.join(', ')}`)
    assert.equal(await page.locator('#audit tbody tr[data-kind="release"] td.detail').first().textContent(),
      `${rel.id} #1 targets tag:web=${storeName(v1)} · waves 1:1 healthy=100%,soak=3s | 2:100% healthy=100%,soak=3s · max failures 0`)
    // a witness (due 30 s after the admits and the release) says what it witnessed
    await page.locator('#audit tbody tr[data-kind="witness"]').first().waitFor({ timeout: WAIT_MS })
    assert.match(await page.locator('#audit tbody tr[data-kind="witness"] td.detail').first().textContent() ?? '', /^witnessed the heads of [1-9]\d* feed\(s\) · root [0-9a-f]{16}…$/)
    assert.ok(await page.isHidden('#alerts'), 'no alert in an honest, healthy fleet')

    checkChangeLines(await piped, rel.id, label)
    const tty = await terminal
    assert.equal(tty.code, 0, tty.stdout)
    assert.match(tty.stdout, /\x1b\[\d+F\x1b\[J/, 'redrawn in place')
    assert.match(tty.stdout, /\x1b\[32mhealthy\x1b\[0m/, 'in colour')
    assert.ok(!/^\d\d:\d\d:\d\d /m.test(tty.stdout), 'no change lines on a terminal')

    // Four things at once, each on state of its own: each shows, and goes.
    const c = fleet.host('c')
    const pinShown = async (): Promise<void> => {
      // an admin's pin is a row of the holds, until the unpin
      assert.equal((await a.cli(['pin', c.peerId, '--path', v1, '--reason', 'kept for the view test'])).code, 0)
      const pin = page.locator(`#holds tbody tr.pin[data-host="${c.peerId}"]`)
      await pin.waitFor({ timeout: WAIT_MS })
      assert.match(await pin.textContent() ?? '', new RegExp(`^pin${label.get(c.peerId)}${storeName(v1)}kept for the view test \\(by ${label.get(a.peerId)}\\)$`))
      assert.equal((await a.cli(['unpin', c.peerId])).code, 0)
      await pin.waitFor({ state: 'detached', timeout: WAIT_MS })
    }
    const quarantineShown = async (): Promise<void> => {
      // an admin's quarantine of a path is a row for every host; a release of it halts (b refuses it),
      // which is an alert until the release is aborted
      const path = `/nix/store/${'q'.repeat(32)}-view-quarantined`
      assert.equal((await a.cli(['quarantine', 'add', path, '--reason', 'bad build'])).code, 0)
      const row = page.locator(`#holds tbody tr.quarantine[data-path="${path}"]`)
      await row.waitFor({ timeout: WAIT_MS })
      assert.equal(await row.textContent(), 'quarantineevery hostview-quarantinedbad build')
      const held = await a.json<{ id: string }>(['release', 'publish', '--host', b.peerId, '--path', path, '--force'])
      const halted = page.locator(`#alerts li.release[data-release="${held.id}"]`)
      await halted.waitFor({ timeout: WAIT_MS })
      assert.match(await halted.textContent() ?? '', new RegExp(`^release ${held.id} halted: wave 1: 1 host\\(s\\) refuse quarantined ${path} until it is cleared$`))
      assert.equal((await a.cli(['release', 'abort', held.id])).code, 0)
      await halted.waitFor({ state: 'detached', timeout: WAIT_MS })
      assert.equal((await a.cli(['quarantine', 'clear', path])).code, 0)
      await row.waitFor({ state: 'detached', timeout: WAIT_MS })
    }
    const agentFails = async (): Promise<void> => {
      // b's agent crash-loops: its row says failed and the alerts panel shows it, until an operator restarts it
      const failed = page.locator(`#alerts li.agent[data-host="${b.peerId}"][data-agent="worker"]`)
      for (let crashes = 0; crashes < 3 && !await failed.isVisible(); crashes++) {
        await fetch(agentUrl(workerPort).replace('/health', '/crash'), { method: 'POST' }).then(async (r) => await r.body?.cancel(), () => {})
        await page.waitForTimeout(300)
        for (let i = 0; i < 100 && !await agentServing(workerPort) && !await failed.isVisible(); i++) await page.waitForTimeout(200)
      }
      await failed.waitFor({ timeout: WAIT_MS })
      assert.match(await failed.textContent() ?? '', new RegExp(`^agent worker on ${label.get(b.peerId)} crash-looped and is not restarted until an operator does`))
      assert.equal(await page.getAttribute(`#agents tbody tr[data-host="${b.peerId}"][data-agent="worker"]`, 'data-state'), 'failed')
      await page.screenshot({ path: join(SCREENSHOTS, 'fleet-view-agent.png'), fullPage: true })
      assert.equal((await b.cli(['agents', 'restart', 'worker'])).code, 0)
      await failed.waitFor({ state: 'detached', timeout: WAIT_MS })
    }
    const driftShown = async (): Promise<void> => {
      // drift on another host reaches this host's view as an alert naming what differs, and leaves it once cleared
      const cProfile = join(c.dataDir, 'nix', 'profiles', 'system')
      const back = /-(\d+)-link$/.exec(await readlink(cProfile))![1]
      await runNix('nix-env', ['-p', cProfile, '--set', await buildGeneration(`view-v2-${Date.now()}`, 'good')])
      assert.equal((await c.cli(['drift'])).code, 1, 'fleetmesh drift exits 1 on drift')
      const alert = page.locator(`#alerts li.drift[data-peer="${c.peerId}"]`)
      await alert.waitFor({ timeout: WAIT_MS })
      assert.equal(await alert.getAttribute('data-what'), 'profile')
      assert.match(await alert.textContent() ?? '', new RegExp(`profile on /nix/store/\\S+, not ${v1}`))
      await page.screenshot({ path: join(SCREENSHOTS, 'fleet-view-drift.png'), fullPage: true })
      await runNix('nix-env', ['-p', cProfile, '--switch-generation', back])
      assert.equal((await c.cli(['drift'])).code, 0)
      await alert.waitFor({ state: 'detached', timeout: WAIT_MS })
    }
    await Promise.all([pinShown(), quarantineShown(), agentFails(), driftShown()])
    await page.locator('#alerts').waitFor({ state: 'hidden', timeout: WAIT_MS })

    // A per-tag budget set with the CLI, and a host waiting for its reboot: c's release of a
    // generation whose kernel changed is only staged (the fixture's `switch-to-configuration boot`),
    // so c stays pending-reboot, and holds a place of tag:web's budget until it boots.
    // (two CLI processes at once: whichever entry c reads first, the budget leaves it room to start)
    const [budgetSet, boot] = await Promise.all([a.cli(['budget', 'set', 'tag:web', '2']), a.json<{ id: string }>(['release', 'publish', '--host', c.peerId, '--path', staged])])
    assert.equal(budgetSet.code, 0, budgetSet.stderr)
    await page.locator(`[data-release="${boot.id}"] .host[data-host="${c.peerId}"][data-state="pending-reboot"]`).waitFor({ timeout: WAIT_MS })
    assert.equal(await page.locator(`[data-release="${boot.id}"] .host`).textContent(), `${label.get(c.peerId)}: pending-reboot`)
    assert.equal(await page.locator(`[data-release="${boot.id}"] .budget`).textContent(), `budget tag:web: 1 of at most 2 in flight (${label.get(c.peerId)})`)
    assert.equal(await page.getAttribute(`[data-release="${boot.id}"]`, 'data-state'), 'rolling', 'a staged host is not done')
    assert.deepEqual(consoleErrors, [])

    // Without the token the page and its stream are refused.
    const anon = await browser.newPage()
    const refused = await anon.goto(`${url}/ui`)
    assert.equal(refused?.status(), 401)
    const events = await anon.evaluate(async (u) => (await fetch(`${u}/v1/events`)).status, url)
    assert.equal(events, 401)
  } finally {
    await browser.close()
    await fleet.close()
  }
})
