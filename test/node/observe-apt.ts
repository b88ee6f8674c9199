// Debian tools the observability tests drive for real (promtool, chromium): installed when
// missing if the tests run as root, else the test fails saying what to install.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'

const run = promisify(execFile)

export async function ensureDebianTool (binary: string, pkg: string): Promise<string> {
  if (existsSync(binary)) return binary
  if (process.getuid?.() !== 0) throw new Error(`${binary} is missing: run "apt-get install -y ${pkg}" as root (the test installs it when run as root)`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  try {
    await run('apt-get', ['install', '-y', '--no-install-recommends', pkg], { env, maxBuffer: 64 << 20 })
  } catch {
    await run('apt-get', ['update'], { env, maxBuffer: 64 << 20 })
    await run('apt-get', ['install', '-y', '--no-install-recommends', pkg], { env, maxBuffer: 64 << 20 })
  }
  if (!existsSync(binary)) throw new Error(`apt-get install ${pkg} did not provide ${binary}`)
  return binary
}

/**
 * `promtool check metrics` on an exposition text. A text it cannot parse throws; otherwise its
 * lint findings, one per line, naming the metric they are about.
 */
export async function promtoolCheck (text: string): Promise<string[]> {
  const promtool = await ensureDebianTool('/usr/bin/promtool', 'prometheus')
  const output = await new Promise<string>((resolve, reject) => {
    const child = execFile(promtool, ['check', 'metrics'], (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') reject(err)
      else resolve(`${stdout}${stderr}`)
    })
    child.stdin!.end(text)
  })
  if (/parsing error|error while linting/.test(output)) throw new Error(`promtool cannot parse the metrics: ${output}`)
  return output.split('\n').map((l) => l.trim()).filter(Boolean)
}
