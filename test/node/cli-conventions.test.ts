// The conventions operators expect of a command-line tool, through the real CLI: --version,
// shell completion generated from the command tree (sourced in a real bash), examples and exit
// codes in --help, and config discovery (--config, FLEETMESH_CONFIG, the data dir's, /etc) with
// `config check` validating without starting anything.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { access, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { HostProcess, runCli, tempDir } from '../../simulations/harness/processes.js'
import { findConfig } from '../../node/config-file.js'

test('--version prints the package version; --help shows exit codes and the main commands show examples', async () => {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  const v = await runCli(['--version'])
  assert.equal(v.code, 0, v.stderr)
  assert.equal(v.stdout, `${pkg.version}\n`)
  const help = await runCli(['--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /Exit codes: 0 ok, 1 failed, 2 usage .* 3 no daemon running,\s+4 data dir locked .* 5 refused/s)
  assert.match(help.stdout, /--config <file>/)
  for (const command of [['init'], ['start'], ['join'], ['release', 'publish'], ['audit', 'verify']]) {
    const r = await runCli([...command, '--help'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /\nExamples:\n {2}fleetmesh /, `${command.join(' ')} --help has examples`)
  }
})

test('completion scripts come from the command tree; the bash one completes in a real bash', async () => {
  const dir = await tempDir('fleetmesh-completion-')
  try {
    const r = await runCli(['completion', 'bash'])
    assert.equal(r.code, 0, r.stderr)
    const script = join(dir, 'fleetmesh.bash')
    await writeFile(script, r.stdout)
    // What bash does on TAB: COMP_WORDS/COMP_CWORD set, the registered function run, COMPREPLY read.
    const complete = (words: string[]): string[] => execFileSync('bash', ['--norc', '-c', `source "$1"; complete -p fleetmesh; COMP_WORDS=("\${@:2}"); COMP_CWORD=$(($# - 2)); _fleetmesh; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', script, 'fleetmesh', ...words], { encoding: 'utf8' }).trim().split('\n')
    const [registered, ...root] = complete(['au'])
    assert.equal(registered, 'complete -o default -F _fleetmesh fleetmesh')
    assert.deepEqual(root, ['audit'])
    assert.deepEqual(complete(['audit', 'ver']).slice(1), ['verify'])
    assert.deepEqual(complete(['--data-dir', '/srv/fm', 'release', 'publish', '--max-f']).slice(1), ['--max-failures'])
    assert.deepEqual(complete(['invite', '--tag', 'audit', 'l']).slice(1), ['list'], 'a flag\'s value is not taken for a command')
    assert.ok(complete(['']).includes('completion'), 'every command, this one too')

    const zsh = await runCli(['completion', 'zsh'])
    assert.match(zsh.stdout, /bashcompinit[\s\S]*complete -o default -F _fleetmesh fleetmesh/)
    const fish = await runCli(['completion', 'fish'])
    assert.match(fish.stdout, /complete -c fleetmesh -n '__fish_use_subcommand' -a 'audit'/)
    assert.match(fish.stdout, /complete -c fleetmesh -n '__fish_seen_subcommand_from release; and __fish_seen_subcommand_from publish' -l max-failures -r/)
    const tcsh = await runCli(['completion', 'tcsh'])
    assert.equal(tcsh.code, 2)
    assert.equal(tcsh.stderr, 'fleetmesh: completion: "tcsh" is not a shell; write bash, zsh or fish\n')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('config discovery: --config beats FLEETMESH_CONFIG beats the data dir\'s beats /etc; config check validates', { timeout: 180_000 }, async () => {
  const dir = await tempDir('fleetmesh-config-')
  try {
    const dataDir = join(dir, 'host')
    assert.equal((await runCli(['--data-dir', dataDir, 'init'])).code, 0)
    const own = join(dataDir, 'config.json')
    const envFile = join(dir, 'env.json')
    const flagFile = join(dir, 'flag.json')
    await writeFile(envFile, '{"version":1,"listen":["/ip4/127.0.0.1/tcp/0"]}')
    await writeFile(flagFile, '{"version":1,"listen":["/ip4/127.0.0.1/tcp/0"]}')

    const check = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> => {
      const r = await runCli(['--data-dir', dataDir, ...args, 'config', 'check'], { env })
      assert.equal(r.code, 0, r.stderr)
      return r.stdout
    }
    assert.equal(await check([]), `ok: ${own}\n`)
    assert.equal(await check([], { FLEETMESH_CONFIG: envFile }), `ok: ${envFile}\n`)
    assert.equal(await check(['--config', flagFile], { FLEETMESH_CONFIG: envFile }), `ok: ${flagFile}\n`)
    const gone = await runCli(['--data-dir', dataDir, '--config', join(dir, 'nope.json'), 'config', 'check'])
    assert.equal(gone.code, 2)
    assert.equal(gone.stderr, `fleetmesh: ${join(dir, 'nope.json')}: no such config file (named by --config or FLEETMESH_CONFIG)\n`)

    // /etc/fleetmesh/config.json is shared by the machine: its place in the order is checked on a stand-in.
    const system = join(dir, 'etc.json')
    await writeFile(system, '{"version":1}')
    assert.equal((await findConfig(dataDir, { system })).path, own, 'the data dir\'s own config first')
    assert.equal((await findConfig(join(dir, 'bare'), { system })).path, system, 'then the system one')
    assert.equal((await findConfig(dataDir, { explicit: envFile, system })).path, envFile)
    await assert.rejects(findConfig(join(dir, 'bare'), {}), { code: 'NOT_INITIALISED' })

    // A file named on the command line: valid, misspelt, not JSON, missing.
    assert.equal((await runCli(['config', 'check', envFile])).stdout, `ok: ${envFile}\n`)
    const bad = join(dir, 'bad.json')
    await writeFile(bad, '{"version":1,"bootstrapp":[],"deploy":{"profile":"/nix/var/nix/profiles/system"}}')
    const misspelt = await runCli(['config', 'check', bad])
    assert.equal(misspelt.code, 2)
    assert.match(misspelt.stderr, /^fleetmesh: .*bad\.json: "bootstrapp" is not a setting \(did you mean "bootstrap"\?\)/)
    await writeFile(bad, '{"version":1,')
    assert.match((await runCli(['config', 'check', bad])).stderr, /bad\.json: not valid JSON/)
    const missing = await runCli(['config', 'check', join(dir, 'missing.json')])
    assert.equal(missing.code, 2)
    assert.equal(missing.stderr, `fleetmesh: ${join(dir, 'missing.json')}: no such file or directory\n`)

    // A host on a shared config gets no copy of its own, and the daemon runs on that file.
    const shared = join(dir, 'shared-host')
    const port = 20_000 + Math.floor(Math.random() * 10_000)
    await writeFile(flagFile, JSON.stringify({ version: 1, listen: [`/ip4/127.0.0.1/tcp/${port}`] }))
    const init = await runCli(['--data-dir', shared, '--config', flagFile, 'init'])
    assert.equal(init.code, 0, init.stderr)
    assert.match(init.stdout, new RegExp(`config: +${flagFile}`))
    await assert.rejects(access(join(shared, 'config.json')), 'init wrote no config.json to shadow the shared one')
    const host = await HostProcess.start(shared, [], { FLEETMESH_CONFIG: flagFile, FLEETMESH_LOG_LEVEL: 'warn' })
    try {
      assert.ok(host.addresses.some((a) => a.startsWith(`/ip4/127.0.0.1/tcp/${port}/`)), host.addresses.join(' '))
    } finally {
      await host.stop()
    }
    await assert.rejects(access(join(shared, 'config.json')), 'the daemon wrote none either')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
