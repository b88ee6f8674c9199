// node:http for the control API and the metrics listener, loaded through require: an ESM import
// of a builtin evaluates its whole namespace, and node:http's pulls in http2 and the bundled
// undici client, 13 MiB of RSS (measured on Node 24) that a daemon serving two small HTTP
// listeners never uses.
import { createRequire } from 'node:module'

const http = createRequire(import.meta.url)('node:http') as typeof import('node:http')

export const createServer = http.createServer
