// The NixOS module parses (evaluating it needs nixpkgs, absent here) and names its health
// check options exactly as the TypeScript config types do. Its agents are evaluated with
// nixpkgs' lib replaced by the few functions the module calls (options as declared, mkIf and
// mkMerge as data, the submodule defaults filled in as the module system fills them) and
// writeText by builtins.toFile: what it hands NixOS for each agent's unit is read as is, and
// the daemon's config it writes goes through the daemon's own parser. Turning the unit into
// a unit file, and running it, needs nixpkgs and systemd as PID 1 (README, "Agents").
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { before, describe, it } from 'node:test'
import { runNix } from '../../nixos/nix.js'
import { parseConfig } from '../../node/config-file.js'
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

/** nixpkgs' lib as far as module.nix uses it, and the module evaluated on `agents` (a Nix expression). */
function evalAgents (agents: string): string {
  return `let
  t = name: { inherit name; };
  lib = {
    mkOption = o: o;
    mkEnableOption = d: { description = d; };
    literalExpression = x: x;
    types = {
      str = t "str"; package = t "package"; path = t "path";
      submodule = m: { name = "submodule"; inherit (m) options; };
      enum = _: t "enum"; listOf = _: t "listOf"; either = _: _: t "either";
      nullOr = e: { name = "nullOr"; elem = e; };
      attrsOf = e: { name = "attrsOf"; elem = e; };
      ints = { positive = t "int"; unsigned = t "int"; between = _: _: t "int"; };
    };
    hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    mapAttrs = builtins.mapAttrs;
    nameValuePair = name: value: { inherit name value; };
    mapAttrs' = f: s: builtins.listToAttrs (map (n: f n s.\${n}) (builtins.attrNames s));
    mapAttrsToList = f: s: map (n: f n s.\${n}) (builtins.attrNames s);
  };
  pkgs = { writeText = builtins.toFile; callPackage = _: _: throw "no package here"; };
  fill = opts: v: builtins.mapAttrs (k: o:
    let set = v ? \${k}; x = v.\${k}; ty = o.type or { name = "?"; }; in
    if ty.name == "submodule" then fill ty.options (if set then x else o.default)
    else if ty.name == "nullOr" && ty.elem.name == "submodule" && set && x != null then fill ty.elem.options x
    else if set then x else o.default) opts;
  module = import ${JSON.stringify(modulePath)};
  declared = (module { config = throw "declaring options needs no config"; inherit lib pkgs; }).options.services.fleetmesh;
  cfg = { enable = true; dataDir = "/var/lib/fleetmesh"; agents = builtins.mapAttrs (_: fill declared.agents.type.elem.options) (${agents}); };
  out = (module { config = { services.fleetmesh = cfg; }; inherit lib pkgs; }).config;
  parts = out.content.contents;
in {
  units = (builtins.elemAt parts 1).systemd.services;
  withConfig = (builtins.elemAt parts 2).condition;
  configFile = (builtins.elemAt parts 2).content.systemd.services.fleetmesh.environment.FLEETMESH_CONFIG;
}`
}

interface Evaluated { units: Record<string, { serviceConfig: Record<string, unknown>, [k: string]: unknown }>, withConfig: boolean, configFile: string }

async function evaluate (agents: string): Promise<Evaluated> {
  const { stdout } = await runNix('nix-instantiate', ['--read-write-mode', '--eval', '--strict', '--json', '-E', evalAgents(agents)], { timeoutMs: 120_000 })
  return JSON.parse(stdout) as Evaluated
}

describe('nixos/module.nix: services.fleetmesh.agents', () => {
  before(ensureNix)

  it('an agent becomes the unit fleetmesh-agent-NAME with its restart policy, memory ceiling and watchdog', async () => {
    const e = await evaluate(`{
      llm = {
        command = "/bin/agent"; args = [ "--model" "x y" "50%" "$HOME" ];
        env = { MODEL = "small"; }; user = "agent"; cwd = "/srv/llm";
        memoryMaxBytes = 536870912; stopGraceMs = 2000;
        restart = { backoffInitialMs = 200; backoffMaxMs = 5000; maxRestarts = 3; windowMs = 30500; };
        liveness = { kind = "heartbeat"; timeoutMs = 10000; };
      };
    }`)
    assert.deepEqual(Object.keys(e.units), ['fleetmesh-agent-llm'])
    const u = e.units['fleetmesh-agent-llm']!
    assert.deepEqual(u.serviceConfig, {
      // systemd would expand % and $ in ExecStart=: doubled, the arguments reach the agent as written
      ExecStart: '"/bin/agent" "--model" "x y" "50%%" "$$HOME"',
      Restart: 'on-failure',
      RestartSec: '200ms',
      // 200 ms doubling reaches 5 s in 5 steps
      RestartSteps: 5,
      RestartMaxDelaySec: '5000ms',
      TimeoutStopSec: '2000ms',
      EnvironmentFile: '-/run/fleetmesh/agents/llm.env',
      MemoryAccounting: true,
      MemoryMax: '536870912',
      User: 'agent',
      WorkingDirectory: '/srv/llm',
      WatchdogSec: '10000ms',
      NotifyAccess: 'all'
    })
    // more than maxRestarts restarts within the window: the (maxRestarts + 1)th start hits the limit
    assert.equal(u.startLimitBurst, 4)
    assert.equal(u.startLimitIntervalSec, 31)
    assert.deepEqual(u.environment, { MODEL: 'small' })
    assert.deepEqual(u.partOf, ['fleetmesh.service'])
    assert.equal(u.wantedBy, undefined, 'the daemon starts it, once the token file is written')
  })

  it('the daemon\'s config it writes lists the same agents with backend systemd, and reads with the module\'s defaults as the daemon\'s', async () => {
    const e = await evaluate(`{
      llm = { command = "/bin/agent"; memoryMaxBytes = 536870912; liveness = { kind = "http"; url = "http://127.0.0.1:8080/health"; timeoutMs = 3000; }; };
      plain = { command = "/bin/true"; };
    }`)
    assert.equal(e.withConfig, true)
    assert.match(e.configFile, /^\/nix\/store\/[a-z0-9]{32}-fleetmesh-config\.json$/)
    const config = parseConfig(e.configFile, readFileSync(e.configFile, 'utf8'))
    const defaults = parseConfig('defaults', JSON.stringify({ version: 1, agents: [{ name: 'plain', command: '/bin/true' }] })).agents[0]!
    assert.deepEqual(config.agents, [
      { ...defaults, name: 'llm', backend: 'systemd', command: '/bin/agent', memoryMaxBytes: 536870912, liveness: { kind: 'http', url: 'http://127.0.0.1:8080/health', intervalMs: 1000, timeoutMs: 3000 } },
      { ...defaults, backend: 'systemd' }
    ])
    // an http liveness is the daemon's probe: no watchdog in the unit; the defaults' policy in it
    const plain = e.units['fleetmesh-agent-plain']!
    assert.equal(e.units['fleetmesh-agent-llm']!.serviceConfig.WatchdogSec, undefined)
    assert.deepEqual([plain.serviceConfig.RestartSec, plain.serviceConfig.RestartMaxDelaySec, plain.startLimitBurst, plain.startLimitIntervalSec], ['100ms', '30000ms', 6, 60])
    assert.equal(plain.serviceConfig.User, undefined)
  })

  it('no agents: no agent units and the daemon keeps its own config', async () => {
    const e = await evaluate('{ }')
    assert.deepEqual(e.units, {})
    assert.equal(e.withConfig, false)
  })
})
