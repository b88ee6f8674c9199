// The NixOS module parses (evaluating it needs nixpkgs, absent here) and names its health
// check options exactly as the TypeScript config types do.
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { before, describe, it } from 'node:test'
import { runNix } from '../../nixos/nix.js'
import { ensureNix } from '../fixtures/nix/fixtures.js'

const modulePath = fileURLToPath(new URL('../../nixos/module.nix', import.meta.url))

describe('nixos/module.nix', () => {
  before(ensureNix)

  it('parses and declares services.fleetmesh with the TS option names', async () => {
    const { stdout } = await runNix('nix-instantiate', ['--parse', modulePath])
    for (const opt of ['enable', 'package', 'dataDir', 'listenAddresses', 'bootstrap', 'healthChecks', 'extraArgs', 'soakMs',
      'kind', 'name', 'intervalMs', 'retries', 'timeoutMs', 'startPeriodMs', 'units', 'url', 'expectStatus', 'command', 'Restart']) {
      assert.match(stdout, new RegExp(`\\b${opt} =`), opt)
    }
    assert.doesNotMatch(stdout, /ProtectSystem/)
  })

  it('services.fleetmesh.package defaults to the package built from this repository', async () => {
    const { stdout } = await runNix('nix-instantiate', ['--parse', modulePath])
    const packageNix = fileURLToPath(new URL('../../nixos/package.nix', import.meta.url))
    assert.ok(stdout.includes(`package = (mkOption { default = ((pkgs).callPackage ${packageNix} { });`), 'the package option\'s default')
  })

  it('a syntax error is caught by the same check', async () => {
    await assert.rejects(runNix('nix-instantiate', ['--parse', '-E', '{ a = ; }']), { code: 'NIX_COMMAND_FAILED' })
  })
})
