import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { FormData, request } from 'undici'
import { createMegaOptimServer, type MegaOptimServerHandle } from '../../src/server/server.ts'
import type { InternalServerOptions } from '../../src/server/options.ts'

const here = path.dirname(fileURLToPath(import.meta.url))

export function fixture(name: string): Buffer {
  return readFileSync(path.join(here, '../fixtures/images', name))
}

export interface Started {
  server: MegaOptimServerHandle
  base: string
  endpoint: string
  key: string
  close(): Promise<void>
}

/** A real server on 127.0.0.1:0 with one account. */
export async function startServer(options: InternalServerOptions = {}, tokens = -1): Promise<Started> {
  const server = createMegaOptimServer({ workers: 2, ...options })
  const base = await server.listen({ host: '127.0.0.1', port: 0 })
  const account = await server.createAccount({ name: 'Test', email: `t${Math.random()}@example.com`, tokens })
  return { server, base, endpoint: server.endpoint, key: account.apiKey, close: () => server.close() }
}

export async function tempDir(prefix = 'megaoptim-server-'): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) }
}

export interface ApiAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any
  text: string
}

export interface CallOptions {
  method?: 'GET' | 'POST'
  key?: string
  /** A multipart body (undici FormData) or form-urlencoded fields. */
  body?: FormData | Record<string, string> | string
  contentType?: string
}

export async function call(url: string, opts: CallOptions = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = {}
  if (opts.key !== undefined) headers['x-api-key'] = opts.key
  let body: FormData | string | undefined
  if (opts.body instanceof FormData || typeof opts.body === 'string') body = opts.body
  else if (opts.body) {
    body = new URLSearchParams(opts.body).toString()
    headers['content-type'] = 'application/x-www-form-urlencoded'
  }
  if (opts.contentType) headers['content-type'] = opts.contentType
  const res = await request(url, { method: opts.method ?? (body === undefined ? 'GET' : 'POST'), headers, body })
  const text = await res.body.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.statusCode, headers: res.headers, json, text }
}

export function files(entries: Record<string, [name: string, data: Uint8Array]>, fields: Record<string, string> = {}): FormData {
  const form = new FormData()
  for (const [k, v] of Object.entries(fields)) form.set(k, v)
  for (const [field, [name, data]] of Object.entries(entries)) form.set(field, new Blob([data]), name)
  return form
}

/** Submits and long-polls until the job is done; returns the /result answer. */
export async function optimizeAndWait(s: Started, form: FormData | Record<string, string>, key = s.key): Promise<ApiAnswer> {
  const submitted = await call(`${s.endpoint}/optimize`, { key, body: form })
  if (submitted.json?.code !== 202) throw new Error(`submit failed: ${submitted.text}`)
  return waitResult(s.endpoint, submitted.json.process_id as string, key)
}

/**
 * Long-polls /result until the job is done. A job still pending after `withinMs` fails here with its last
 * answer, instead of running into the test's timeout, which would not say which job was stuck or how.
 */
export async function waitResult(endpoint: string, id: string, key: string, withinMs = 60_000): Promise<ApiAnswer> {
  const deadline = Date.now() + withinMs
  for (;;) {
    const wait = Math.max(1, Math.min(30, Math.ceil((deadline - Date.now()) / 1000)))
    const answer = await call(`${endpoint}/optimize/${id}/result?timeout=${wait}`, { key })
    if (answer.json?.code !== 202) return answer
    if (Date.now() >= deadline) throw new Error(`job ${id} on ${endpoint} still pending after ${withinMs / 1000} s: ${answer.text}`)
  }
}

/** A plain HTTP server on loopback for url fetching and callbacks. */
export async function localServer(
  handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void,
): Promise<{ url: string; close(): Promise<void>; hits: number }> {
  const state = { hits: 0 }
  const srv = createServer((req, res) => {
    state.hits++
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => handler(req, res, Buffer.concat(chunks)))
  })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const { port } = srv.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    get hits() {
      return state.hits
    },
    close: () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections()
        srv.close(() => resolve())
      }),
  }
}
