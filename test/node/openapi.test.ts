// docs/openapi.json against the control API as the code registers it: a real node is started
// and its ApiServer lists its routes, so a route added anywhere without its document entry
// (or a documented route that is gone) fails here by name. The document is checked for the
// OpenAPI 3.1 structure it relies on (no validator dependency: the checks below), and real
// answers of the node — bodies and errors — are checked against the schemas it documents.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { MeshNode } from '../../node/mesh.js'
import { initHost } from '../../node/init.js'
import { readConfig, writeConfig } from '../../node/config-file.js'
import type { RouteInfo } from '../../node/api.js'

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
type Obj = Record<string, Json>
const DOC_PATH = new URL('../../docs/openapi.json', import.meta.url)
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

function resolve (doc: Obj, ref: string): Json | undefined {
  if (!ref.startsWith('#/')) return undefined
  let at: Json | undefined = doc
  for (const part of ref.slice(2).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))) {
    at = isObj(at) ? at[part] : undefined
  }
  return at
}

/** What keeps the document from being a usable OpenAPI 3.1 description; empty when none. */
function structuralProblems (doc: Obj): string[] {
  const problems: string[] = []
  const walk = (v: Json, where: string): void => {
    if (Array.isArray(v)) { v.forEach((x, i) => { walk(x, `${where}/${i}`) }); return }
    if (!isObj(v)) return
    if (typeof v.$ref === 'string' && resolve(doc, v.$ref) === undefined) problems.push(`${where}: $ref ${v.$ref} does not resolve`)
    for (const [k, x] of Object.entries(v)) walk(x, `${where}/${k}`)
  }
  walk(doc, '#')
  if (typeof doc.openapi !== 'string' || !/^3\.1\.\d+$/.test(doc.openapi)) problems.push('openapi must be 3.1.x')
  const info = doc.info
  if (!isObj(info) || typeof info.title !== 'string' || typeof info.version !== 'string') problems.push('info needs title and version')
  if (!isObj(doc.paths)) return [...problems, 'paths must be an object']
  const schemes = isObj(doc.components) && isObj(doc.components.securitySchemes) ? doc.components.securitySchemes : {}
  const ids = new Set<string>()
  for (const [path, item] of Object.entries(doc.paths)) {
    if (!path.startsWith('/') || !isObj(item)) { problems.push(`${path}: not a path item`); continue }
    for (const [method, op] of Object.entries(item)) {
      const at = `${method.toUpperCase()} ${path}`
      if (!METHODS.includes(method) || !isObj(op)) { problems.push(`${at}: not an operation`); continue }
      if (typeof op.operationId !== 'string' || ids.has(op.operationId)) problems.push(`${at}: operationId missing or not unique`)
      else ids.add(op.operationId)
      const params = (Array.isArray(op.parameters) ? op.parameters : []).map((p) => isObj(p) && typeof p.$ref === 'string' ? resolve(doc, p.$ref) : p)
      for (const p of params) {
        if (!isObj(p) || typeof p.name !== 'string' || !['query', 'header', 'path', 'cookie'].includes(p.in as string) || !isObj(p.schema)) problems.push(`${at}: a parameter needs name, in and schema`)
      }
      const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1])
      const declared = params.filter((p) => isObj(p) && p.in === 'path').map((p) => (p as Obj).name)
      if ([...inPath].sort().join() !== [...declared].sort().join()) problems.push(`${at}: path parameters ${inPath.join()} declared as ${declared.join()}`)
      if (params.some((p) => isObj(p) && p.in === 'path' && p.required !== true)) problems.push(`${at}: a path parameter must be required`)
      if (!isObj(op.responses) || Object.keys(op.responses).length === 0) { problems.push(`${at}: no responses`); continue }
      for (const [status, r] of Object.entries(op.responses)) {
        const res = isObj(r) && typeof r.$ref === 'string' ? resolve(doc, r.$ref) : r
        if (!/^([1-5]\d\d|[1-5]XX|default)$/.test(status) || !isObj(res) || typeof res.description !== 'string') problems.push(`${at}: response ${status} needs a description`)
      }
      if (!Array.isArray(op.security) || op.security.length === 0) problems.push(`${at}: no security requirement`)
      for (const s of Array.isArray(op.security) ? op.security : []) {
        for (const name of Object.keys(isObj(s) ? s : {})) if (!isObj(schemes[name])) problems.push(`${at}: security scheme ${name} is not defined`)
      }
    }
  }
  return problems
}

/** The JSON Schema keywords the document uses, enough to hold a real answer against it. */
function schemaErrors (doc: Obj, schema: Json | undefined, v: unknown, at = '$'): string[] {
  if (!isObj(schema)) return []
  if (typeof schema.$ref === 'string') return schemaErrors(doc, resolve(doc, schema.$ref), v, at)
  const errs: string[] = []
  const typeOf = (x: unknown): string => x === null ? 'null' : Array.isArray(x) ? 'array' : Number.isInteger(x) ? 'integer' : typeof x
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type]
    const t = typeOf(v)
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) return [`${at}: ${t}, not ${types.join('|')}`]
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(v as Json)) errs.push(`${at}: ${JSON.stringify(v)} not in ${JSON.stringify(schema.enum)}`)
  if (schema.const !== undefined && schema.const !== v) errs.push(`${at}: not ${JSON.stringify(schema.const)}`)
  if (typeof schema.pattern === 'string' && typeof v === 'string' && !new RegExp(schema.pattern, 'u').test(v)) errs.push(`${at}: ${v} does not match ${schema.pattern}`)
  if (Array.isArray(schema.oneOf) && schema.oneOf.filter((s) => schemaErrors(doc, s, v, at).length === 0).length !== 1) errs.push(`${at}: not exactly one of oneOf`)
  if (Array.isArray(v) && schema.items !== undefined) v.forEach((x, i) => { errs.push(...schemaErrors(doc, schema.items, x, `${at}[${i}]`)) })
  if (isObj(v)) {
    for (const k of Array.isArray(schema.required) ? schema.required : []) if (!(k as string in v)) errs.push(`${at}: ${String(k)} missing`)
    const props = isObj(schema.properties) ? schema.properties : {}
    for (const [k, x] of Object.entries(v)) {
      if (k in props) errs.push(...schemaErrors(doc, props[k], x, `${at}.${k}`))
      else if (schema.additionalProperties === false) errs.push(`${at}: unexpected ${k}`)
    }
  }
  return errs
}

const pathOf = (r: RouteInfo): string => r.path.replace(/:([a-zA-Z]+)/g, '{$1}')

describe('docs/openapi.json', () => {
  const doc = JSON.parse(readFileSync(DOC_PATH, 'utf8')) as Obj
  const paths = doc.paths as Record<string, Record<string, Obj>>
  let dir: string
  let node: MeshNode
  let token: string
  let routes: RouteInfo[]

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetmesh-openapi-'))
    await initHost(dir, { mesh: 'openapi' })
    const config = await readConfig(dir)
    await writeConfig(dir, { ...config, deploy: { ...config.deploy, profile: join(dir, 'nix', 'profiles', 'system') } })
    node = await MeshNode.start({ dataDir: dir, logger: pino({ level: 'silent' }) })
    token = readFileSync(join(dir, 'api-token'), 'utf8').trim()
    routes = node.api.routeList()
  })
  after(async () => {
    await node?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('is a structurally valid OpenAPI 3.1 document, and the check sees a broken one', () => {
    assert.deepEqual(structuralProblems(doc), [])
    const broken = JSON.parse(JSON.stringify(doc)) as Obj
    const status = (broken.paths as Record<string, Record<string, Obj>>)['/v1/status']!.get!
    ;(status.responses as Obj)['200'] = { $ref: '#/components/responses/Nope' }
    status.security = [{ nobody: [] }]
    const problems = structuralProblems(broken)
    assert.ok(problems.some((p) => p.includes('#/components/responses/Nope')), problems.join('\n'))
    assert.ok(problems.some((p) => p.includes('scheme nobody')), problems.join('\n'))
  })

  it('documents every route the node registers, and no other', () => {
    assert.ok(routes.length > 30, 'the node registered its routes')
    const documented = new Set(Object.entries(paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`)))
    const registered = new Set(routes.map((r) => `${r.method} ${pathOf(r)}`))
    const undocumented = [...registered].filter((r) => !documented.has(r))
    const gone = [...documented].filter((r) => !registered.has(r))
    assert.deepEqual(undocumented, [], `routes registered in the code but missing from docs/openapi.json (add them there):\n  ${undocumented.join('\n  ')}`)
    assert.deepEqual(gone, [], `routes in docs/openapi.json that the code no longer registers:\n  ${gone.join('\n  ')}`)
  })

  it('gives each route the auth the code enforces: the operator token, an agent token where allowed, the UI cookie on GET', () => {
    const wrong: string[] = []
    for (const r of routes) {
      const op = paths[pathOf(r)]?.[r.method.toLowerCase()]
      if (op === undefined) continue
      const schemes = (op.security as Obj[]).flatMap((s) => Object.keys(s)).sort()
      const want = ['operatorToken', ...(r.agents ? ['agentToken'] : []), ...(r.method === 'GET' ? ['uiSession'] : [])].sort()
      if (schemes.join() !== want.join()) wrong.push(`${r.method} ${r.path}: documented ${schemes.join(', ')}, the code takes ${want.join(', ')}`)
    }
    assert.deepEqual(wrong, [])
  })

  /** Calls the node and holds the answer against the documented response of that operation. */
  async function call (method: string, path: string, opts: { body?: unknown, auth?: string | null } = {}): Promise<{ status: number, body: unknown }> {
    const url = new URL(path, node.apiUrl)
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    const auth = opts.auth === undefined ? token : opts.auth
    if (auth !== null) headers.authorization = `Bearer ${auth}`
    const res = await fetch(url, { method, headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) })
    const body = await res.json() as unknown
    const template = Object.keys(paths).find((p) => new RegExp(`^${p.replace(/\{\w+\}/g, '[^/]+')}$`).test(url.pathname))
    const op = template === undefined ? undefined : paths[template]![method.toLowerCase()]
    // an unknown route has no operation: its 404 is the server's, with the shared error shape
    const documented: Json | undefined = op === undefined ? (res.status === 404 ? { content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } } : undefined) : (op.responses as Obj)[String(res.status)]
    assert.ok(documented !== undefined, `${method} ${path} answered ${res.status}, which docs/openapi.json does not list`)
    const resp = isObj(documented) && typeof documented.$ref === 'string' ? resolve(doc, documented.$ref) : documented
    const schema = ((resp as Obj).content as Obj)['application/json'] as Obj
    assert.deepEqual(schemaErrors(doc, schema.schema, body), [], `${method} ${path} (${res.status}) does not match its documented schema`)
    return { status: res.status, body }
  }

  it('real answers match the documented schemas and statuses', async () => {
    assert.equal((await call('GET', '/v1/status')).status, 200)
    assert.equal((await call('GET', '/v1/members')).status, 200)
    assert.equal((await call('GET', '/v1/peers')).status, 200)
    assert.equal((await call('POST', '/v1/invites', { body: { tags: ['web'] } })).status, 200)
    assert.equal((await call('GET', '/v1/invites')).status, 200)
    assert.equal((await call('GET', '/v1/audit/log?limit=5')).status, 200)
    assert.equal((await call('POST', '/v1/audit/verify')).status, 200)
    assert.equal((await call('GET', '/v1/deploy')).status, 200)
    const issued = await call('POST', '/v1/agents', { body: { agent: 'bot' } })
    assert.equal(issued.status, 200)
    assert.equal((await call('GET', '/v1/rooms', { auth: (issued.body as { token: string }).token })).status, 200)
  })

  it('errors have the documented shape and status', async () => {
    assert.equal((await call('GET', '/v1/status', { auth: null })).status, 401)
    assert.equal((await call('GET', '/v1/status', { auth: 'f'.repeat(64) })).status, 401)
    const agent = (await call('POST', '/v1/agents', { body: { agent: 'bot2' } })).body as { token: string }
    assert.equal((await call('GET', '/v1/status', { auth: agent.token })).status, 403)
    assert.equal((await call('POST', '/v1/join', { body: {} })).status, 400)
    assert.equal((await call('POST', '/v1/invites', { body: { uses: 0 } })).status, 400)
    assert.equal((await call('GET', '/v1/releases/r-none')).status, 404)
    assert.equal((await call('GET', '/v1/rooms/nope/stats')).status, 404)
    assert.equal((await call('GET', '/v1/nothing-here')).status, 404)
    assert.equal((await call('POST', '/v1/revoke', { body: { peer: `12D3KooW${'a'.repeat(44)}` } })).status, 404)
    // a name no host has is the caller's mistake (node/host-names.ts resolveHost)
    assert.equal((await call('POST', '/v1/revoke', { body: { peer: '12D3KooWNotAMember' } })).status, 400)
  })

  it('the schema check is not blind', () => {
    const status = { $ref: '#/components/schemas/NodeStatus' }
    assert.ok(schemaErrors(doc, status, { version: 1 }).length > 0)
    assert.ok(schemaErrors(doc, { $ref: '#/components/schemas/Error' }, { error: { code: 'X' } }).length > 0)
  })
})
