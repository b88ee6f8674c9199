// `fleetmesh completion bash|zsh|fish`: shell completion generated from commander's command tree,
// so a command or flag another module registers completes with no list to keep in step.
import type { Command } from 'commander'

export const SHELLS = ['bash', 'zsh', 'fish'] as const
export type Shell = typeof SHELLS[number]

interface Node {
  /** command words from the root, e.g. ['audit', 'log'] */
  path: string[]
  description: string
  subcommands: string[]
  options: Array<{ long: string, short?: string, description: string, takesValue: boolean }>
}

function walk (cmd: Command, path: string[], into: Node[]): Node[] {
  const subs = cmd.commands.filter((c) => c.name() !== 'help')
  into.push({
    path,
    description: cmd.description(),
    subcommands: subs.map((c) => c.name()),
    options: [...cmd.options.filter((o) => o.long !== undefined).map((o) => ({ long: o.long!, short: o.short, description: o.description, takesValue: o.required || o.optional })),
      { long: '--help', description: 'display help for command', takesValue: false }]
  })
  for (const c of subs) walk(c, [...path, c.name()], into)
  return into
}

const quote = (text: string): string => `'${text.replaceAll('\'', '\'\\\'\'')}'`

function bash (nodes: Node[]): string {
  const paths = nodes.filter((n) => n.path.length > 0).map((n) => `/${n.path.join('/')}`)
  const cases = nodes.map((n) => `    ${quote(n.path.length === 0 ? '' : `/${n.path.join('/')}`)}) words=${quote([...n.subcommands, ...n.options.map((o) => o.long)].join(' '))} ;;`)
  const valued = [...new Set(nodes.flatMap((n) => n.options.filter((o) => o.takesValue).flatMap((o) => [o.long, ...o.short !== undefined ? [o.short] : []])))]
  return `# fleetmesh completion for bash: eval "$(fleetmesh completion bash)"
_fleetmesh() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" w i words=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in
      ${valued.join('|')}) ((i++)); continue ;;
      -*) continue ;;
    esac
    case "$path/$w" in
      ${paths.join('|')}) path="$path/$w" ;;
    esac
  done
  case "$path" in
${cases.join('\n')}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _fleetmesh fleetmesh
`
}

function fish (nodes: Node[]): string {
  const lines = ['# fleetmesh completion for fish: fleetmesh completion fish | source', 'complete -c fleetmesh -f']
  for (const n of nodes) {
    // At the root: no command word yet; below it: every word of the path seen, no child yet.
    const cond = n.path.length === 0
      ? '__fish_use_subcommand'
      : [...n.path.map((w) => `__fish_seen_subcommand_from ${w}`), ...(n.subcommands.length > 0 ? [`not __fish_seen_subcommand_from ${n.subcommands.join(' ')}`] : [])].join('; and ')
    const children = nodes.filter((c) => c.path.length === n.path.length + 1 && c.path.slice(0, -1).join(' ') === n.path.join(' '))
    for (const c of children) lines.push(`complete -c fleetmesh -n ${quote(cond)} -a ${quote(c.path[c.path.length - 1])} -d ${quote(c.description)}`)
    for (const o of n.options) lines.push(`complete -c fleetmesh -n ${quote(cond)} -l ${o.long.slice(2)}${o.takesValue ? ' -r' : ''} -d ${quote(o.description)}`)
  }
  return lines.join('\n') + '\n'
}

export function completionScript (program: Command, shell: Shell): string {
  const nodes = walk(program, [], [])
  if (shell === 'fish') return fish(nodes)
  // zsh runs the bash function through its bash-completion emulation.
  if (shell === 'zsh') return `# fleetmesh completion for zsh: eval "$(fleetmesh completion zsh)"\nautoload -U +X bashcompinit && bashcompinit\n${bash(nodes)}`
  return bash(nodes)
}
