// Real Nix for the escalation test: the profile backend the daemon uses, and nix-build of a
// fixture generation.
import { runNix } from '../../nixos/nix.js'

export { NixProfileBackend } from '../../nixos/index.js'

export async function runNixBuild (file: string, args: Record<string, string>): Promise<string> {
  const argv = [file, '--no-out-link', ...Object.entries(args).flatMap(([k, v]) => ['--argstr', k, v])]
  return (await runNix('nix-build', argv)).stdout.trim()
}
