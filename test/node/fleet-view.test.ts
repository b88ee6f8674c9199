// The live fleet view in a real headless Chromium (Debian's chromium, driven by playwright-core):
// the page is opened on a daemon's control API while a release rolls out, and the second
// wave's bar is seen to advance through SSE updates alone, without a reload.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { Fleet } from '../../simulations/harness/fleet.js'
import { buildGeneration } from '../fixtures/nix/fixtures.js'
import { runNix } from '../../nixos/nix.js'
import { ensureDebianTool } from './observe-apt.js'

const WAIT_MS = 120_000
const SCREENSHOTS = fileURLToPath(new URL('../../out/', import.meta.url))

test('the fleet view shows members, a rollout\'s waves advancing live, the audit trail, and a host\'s drift', { timeout: 10 * 60_000 }, async (t) => {
  const executablePath = await ensureDebianTool('/usr/bin/chromium', 'chromium')
  const fleet = await Fleet.create({ hosts: [{ name: 'a', role: 'admin', tags: ['web'] }, { name: 'b', tags: ['web'] }, { name: 'c', tags: ['web'] }], soakMs: 300 })
  const browser = await chromium.launch({ executablePath })
  try {
    await fleet.pairAll()
    const a = fleet.founder
    const { url } = JSON.parse(await readFile(join(a.dataDir, 'api.json'), 'utf8')) as { url: string }
    const token = (await readFile(join(a.dataDir, 'api-token'), 'utf8')).trim()
    const v1 = await buildGeneration(`view-v1-${Date.now()}`, 'good')

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

    // A soak long enough that the second wave is seen waiting on the first.
    const rel = await a.json<{ id: string }>(['release', 'publish', '--tag', 'web', '--path', v1, '--waves', '1,100%', '--gate', 'healthy=100%,soak=3s'])
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
    const hostStates = await page.$$eval(`[data-release="${rel.id}"] .host`, (els) => els.map((e) => e.className))
    assert.deepEqual(hostStates, ['host apply-ok', 'host apply-ok', 'host apply-ok'])
    const kinds = await page.$$eval('#audit tbody tr', (rows) => rows.map((r) => r.getAttribute('data-kind')))
    assert.ok(kinds.filter((k) => k === 'apply-ok').length === 3, `audit rows: ${kinds.join(', ')}`)
    assert.ok(await page.isHidden('#alerts'), 'no equivocation alert in an honest fleet')

    // Drift on another host reaches this host's view as an alert naming what differs, and leaves it once cleared.
    const c = fleet.host('c')
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
    await page.locator('#alerts').waitFor({ state: 'hidden', timeout: WAIT_MS })
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
