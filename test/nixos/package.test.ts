// The Nix packaging, proved as far as it can be without nixpkgs (which cannot be fetched
// here): the expressions parse; the flake's systems, checks and module evaluate with nixpkgs
// replaced by an error (so nothing else is missing); the package expression is evaluated with
// buildNpmPackage as the identity, to read what it hands to nixpkgs; and the lock file that
// importNpmLock reads names a registry tarball and an integrity for every package — checked
// against the tarballs npm itself fetched, as its cache records them. Building the package
// and running nixos/tests/pair-and-rollout.nix need nixpkgs (README, "NixOS").
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runNix } from '../../nixos/nix.js'
import { ensureNix } from '../fixtures/nix/fixtures.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string, version: string, bin: Record<string, string>, scripts: Record<string, string> }

interface LockPackage { version?: string, resolved?: string, integrity?: string, link?: boolean, inBundle?: boolean, name?: string }

async function evalJson<T> (expr: string): Promise<T> {
  const { stdout } = await runNix('nix-instantiate', ['--eval', '--strict', '--json', '-E', expr], { timeoutMs: 120_000 })
  return JSON.parse(stdout) as T
}

const flake = `let f = import ${JSON.stringify(join(root, 'flake.nix'))}; o = f.outputs { self = o; nixpkgs = throw "nixpkgs is not available here"; }; in`
const pkg = `import ${JSON.stringify(join(root, 'nixos/package.nix'))} { buildNpmPackage = a: a; importNpmLock = { __functor = _: a: { importNpmLock = a; }; npmConfigHook = "importNpmLock.npmConfigHook"; }; nodejs_24 = "nodejs_24"; makeWrapper = "makeWrapper"; lib = throw "nixpkgs' lib is not available here"; }`

describe('Nix packaging', () => {
  before(ensureNix)

  it('flake.nix, nixos/package.nix and the NixOS VM test parse', async () => {
    for (const file of ['flake.nix', 'nixos/package.nix', 'nixos/tests/pair-and-rollout.nix']) {
      const { stdout } = await runNix('nix-instantiate', ['--parse', join(root, file)])
      assert.ok(stdout.length > 0, file)
    }
  })

  it('the flake exposes the package, the module and the VM test per system, needing nothing but nixpkgs', async () => {
    const o = await evalJson<{ inputs: string[], packages: Record<string, string[]>, checks: Record<string, string[]>, module: Record<string, boolean> }>(`${flake} {
      inputs = builtins.attrNames f.inputs;
      packages = builtins.mapAttrs (_: builtins.attrNames) o.packages;
      checks = builtins.mapAttrs (_: builtins.attrNames) o.checks;
      module = builtins.functionArgs o.nixosModules.default;
    }`)
    assert.deepEqual(o.inputs, ['nixpkgs'])
    assert.deepEqual(o.packages, { 'aarch64-linux': ['default', 'fleetmesh'], 'x86_64-linux': ['default', 'fleetmesh'] })
    assert.deepEqual(o.checks['x86_64-linux'], ['package', 'pair-and-rollout'])
    // the module is nixos/module.nix itself: a NixOS module function
    assert.deepEqual(o.module, { config: false, lib: false, pkgs: false })
    // what is left to evaluate needs nixpkgs, and only that
    await assert.rejects(evalJson(`${flake} o.packages.x86_64-linux.default.name`), /nixpkgs is not available here/)
    await assert.rejects(evalJson(`${flake} builtins.typeOf o.checks.x86_64-linux.pair-and-rollout`), /nixpkgs is not available here/)
  })

  it('the package is this repository\'s package.json, built by its build script with Node 24, with the fleetmesh bin wrapped', async () => {
    const p = await evalJson<Record<string, unknown>>(`let p = ${pkg}; in { inherit (p) pname version nodejs npmBuildScript npmConfigHook installPhase; hasDepsHash = p ? npmDepsHash; depsLockIsPassthru = p.npmDeps.importNpmLock.packageLock == p.passthru.npmLock; depsPackage = p.npmDeps.importNpmLock.package.name; }`)
    assert.equal(p.pname, packageJson.name)
    assert.equal(p.version, packageJson.version)
    assert.equal(p.nodejs, 'nodejs_24')
    assert.equal(p.npmBuildScript, 'build')
    assert.ok(packageJson.scripts.build.includes('tsc -b'), 'the build script compiles dist/')
    // the dependencies: importNpmLock, one fetch per package checked by the lock's integrity, of
    // the lock the last test checks; no whole-cache hash to keep in step with the lock
    assert.equal(p.hasDepsHash, false)
    assert.equal(p.npmConfigHook, 'importNpmLock.npmConfigHook')
    assert.equal(p.depsLockIsPassthru, true)
    assert.equal(p.depsPackage, packageJson.name)
    // the bin package.json declares, wrapped to run on nodejs_24, with the dist/ it imports
    assert.equal(packageJson.bin.fleetmesh, 'node/bin/fleetmesh.js')
    assert.match(String(p.installPhase), /makeWrapper nodejs_24\/bin\/node \$out\/bin\/fleetmesh --add-flags \$out\/lib\/fleetmesh\/node\/bin\/fleetmesh\.js/)
    assert.match(String(p.installPhase), /cp -r package\.json dist node_modules /)
    assert.match(readFileSync(join(root, 'node/bin/fleetmesh.js'), 'utf8'), /'\.\.\/\.\.\/dist\/node\/cli\.js'/)
  })

  it('the lock importNpmLock reads names a registry tarball and an integrity for every package, as npm fetched them', async (t) => {
    const lock = await evalJson<{ lockfileVersion: number, packages: Record<string, LockPackage> }>(`(${pkg}).passthru.npmLock`)
    const raw = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> }
    assert.deepEqual(Object.keys(lock.packages).sort(), Object.keys(raw.packages).sort(), 'the same packages as package-lock.json')
    const fetched = Object.entries(lock.packages).filter(([k, p]) => k !== '' && p.link !== true && p.inBundle !== true)
    assert.ok(fetched.length > 100)
    const incomplete = fetched.filter(([, p]) => !/^https:\/\/registry\.npmjs\.org\/(@[^/]+\/)?[^/]+\/-\/[^/]+\.tgz$/.test(p.resolved ?? '') || !/^sha512-/.test(p.integrity ?? ''))
    assert.deepEqual(incomplete.map(([k]) => k), [], 'packages importNpmLock would skip, leaving npm ci offline without them')
    for (const [k, p] of fetched) {
      assert.ok(p.resolved!.endsWith(`-${p.version}.tgz`), k)
      if (raw.packages[k]!.resolved !== undefined) assert.equal(p.resolved, raw.packages[k]!.resolved, `${k}: a URL the lock names is kept`)
    }

    // npm's cache keys each tarball by the URL it fetched it from (cacache index-v5, bucket =
    // sha256 of the key): a derived URL must be such a key, with the lock's integrity.
    const cache = join(process.env.npm_config_cache ?? join(homedir(), '.npm'), '_cacache', 'index-v5')
    if (!existsSync(cache)) {
      assert.fail(`no npm cache at ${cache} to check the URLs against: run npm ci first`)
    }
    let seen = 0
    const wrong: string[] = []
    for (const [k, p] of fetched) {
      const key = `make-fetch-happen:request-cache:${p.resolved!}`
      const h = createHash('sha256').update(key).digest('hex')
      const bucket = join(cache, h.slice(0, 2), h.slice(2, 4), h.slice(4))
      if (!existsSync(bucket)) continue
      const entries = readFileSync(bucket, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l.slice(l.indexOf('\t') + 1)) as { key: string, integrity: string | null })
      const entry = entries.filter((e) => e.key === key).pop()
      if (entry === undefined) continue
      seen++
      if (entry.integrity !== p.integrity) wrong.push(`${k}: npm fetched ${p.resolved!} with ${String(entry.integrity)}, the lock says ${p.integrity!}`)
    }
    assert.deepEqual(wrong, [])
    t.diagnostic(`${seen} of ${fetched.length} derived tarball URLs found in npm's cache, each with the lock's integrity`)
    // the installed tree came from this cache: the bulk of the lock must be found in it
    assert.ok(seen > fetched.length / 2, `only ${seen} of ${fetched.length} derived URLs are in npm's cache`)
  })
})
