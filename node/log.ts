// The daemon's logger: pino JSON lines for machines (journald, a collector), or pino-pretty's
// coloured lines for a person watching a terminal. FLEETMESH_LOG_FORMAT chooses (config.ts).
import { pino, type Logger } from 'pino'

export type LogFormat = 'json' | 'pretty'

export async function createLogger (level: string, format: LogFormat): Promise<Logger> {
  const opts = { name: 'fleetmesh', level }
  if (format === 'json') return pino(opts, pino.destination(2))
  // Loaded only when wanted: the JSON path is what a supervised daemon runs.
  const { default: pretty } = await import('pino-pretty')
  // sync: a line logged just before exit (a fatal start error) is not lost in a buffer.
  return pino(opts, pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' }))
}
