// `fleetmesh ui`: where this host's fleet view is and how to sign in to it. The view is served
// by the control API (node/api.ts): a browser opens /ui?token=… once and trades the token for a
// session cookie. The token is printed only when asked for (--with-token): a URL holding it
// ends up in terminal scrollback and shell logs.
import type { Command } from 'commander'
import { dataPaths } from './config.js'
import type { ControlClient } from './client.js'

const out = (line: string): void => { process.stdout.write(line + '\n') }

export function registerUiCommand (program: Command, dataDir: () => string, client: () => Promise<ControlClient>): void {
  program.command('ui')
    .description('print the URL of this host\'s fleet view and how to sign in')
    .option('--with-token', 'print the sign-in URL with the API token in it')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nA fixed address across restarts: set "api": {"port": N} in config.json.')
    .action(async (o: { withToken?: boolean, json?: boolean }) => {
      const c = await client()
      // The daemon must answer, not only have left api.json behind.
      await c.get('/v1/status')
      const url = `${c.url}/ui`
      const tokenFile = dataPaths(dataDir()).apiToken
      const signIn = o.withToken === true ? `${url}?token=${c.token}` : `${url}?token=TOKEN`
      if (o.json === true) return out(JSON.stringify({ url, signIn, tokenFile }))
      out(`fleet view: ${url}`)
      out(`sign in:    open ${signIn} once; the browser keeps a session cookie and drops the token from the address bar`)
      if (o.withToken !== true) out(`            TOKEN is in ${tokenFile} (or run "fleetmesh ui --with-token")`)
    })
}
