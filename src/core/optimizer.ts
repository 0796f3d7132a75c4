/**
 * Where raster images go: the hosted API, a self-hosted compatible server, or the embedded server started
 * in-process. All three are reached through the same client (and its scheduler) over HTTP.
 *
 * Everything here is loaded lazily and only on the first cache miss: a build whose images all come from
 * the cache never loads the client, never starts the embedded server, never loads sharp.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { CallOptions } from '../client/client.ts'
import type { ClientEvent, ClientStats, OptimizeOutcome, OptimizeParams } from '../client/types.ts'
import type { Backend } from './backend.ts'

export interface RemoteOptimizer {
  /** One outcome per input, in input order; per-item failures never throw. */
  optimize(inputs: { name: string; data: Uint8Array }[], params: OptimizeParams, call?: CallOptions): Promise<OptimizeOutcome[]>
  /** HTTP requests made to the API so far (downloads not included). */
  requests(): number
  /** The client's counters: requests per endpoint, retries, 429s. */
  stats(): ClientStats
  /** The balance the API last reported, if any. */
  tokensLeft(): number | null
  /** The embedded engine's version from the server's `GET /status`; null for remote APIs (never asked). */
  engineVersion(): Promise<string | null>
  close(): Promise<void>
}

export interface OpenOptions {
  backend: Backend
  concurrency: number | undefined
  rateLimit: number | undefined
  /** Tries again per failed request (the client's `maxAttempts` - 1). */
  retries: number
  onEvent?: (event: ClientEvent) => void
  /** Told once when the embedded server starts (the one line the user sees about it). */
  onEmbeddedStart?: (endpoint: string) => void
}

let packageVersion: string | undefined

/** A day: the embedded path has no call deadline worth the name (each image is bounded by its job's). */
const EMBEDDED_CALL_DEADLINE_MS = 24 * 60 * 60 * 1000

/** This package's version, read once from its package.json (two levels up from src/core, one from dist). */
export function ownVersion(): string {
  if (packageVersion) return packageVersion
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'unplugin-megaoptim' && pkg.version) return (packageVersion = pkg.version)
    } catch {
      // not here: go up
    }
    dir = path.dirname(dir)
  }
  return (packageVersion = '0.0.0')
}

/**
 * Which optimizer produced an outcome, for the cache key: never the key, and for the embedded server
 * the package version (the engine ships inside it), known without starting anything.
 */
export function backendIdentity(backend: Backend, engineVersion: string | null = null): string {
  if (backend.kind === 'embedded') return `embedded@${ownVersion()}${engineVersion ? `+${engineVersion}` : ''}`
  return backend.hosted ? 'hosted:megaoptim' : `remote:${backend.endpoint}`
}

/** The public label of a backend, for logs and reports. */
export function backendLabel(backend: Backend): string {
  if (backend.kind === 'embedded') return 'embedded'
  return backend.hosted ? 'hosted' : 'self-hosted'
}

export async function openOptimizer(options: OpenOptions): Promise<RemoteOptimizer> {
  let endpoint: string
  let apiKey: string
  let rateLimit = options.rateLimit
  let concurrency = options.concurrency
  /** Client settings for the embedded server only (see below). */
  let local: { maxBatchSize: number; deadline: number } | undefined
  let closeServer = async () => {}
  if (options.backend.kind === 'embedded') {
    const server = await startEmbedded()
    endpoint = server.endpoint
    apiKey = server.apiKey
    // Pacing a loopback server at the hosted API's 120/min would only slow the build down.
    rateLimit ??= server.rateLimit
    // One image per job, and only one more in flight than the server works on: the rest wait here, in
    // the bundle's own buffers, instead of as copies in the server's store; a job's clock covers one
    // image; and an image's result is downloaded as soon as it is ready, not when its batch-mates are.
    concurrency ??= server.workers + 1
    // The engine is on this machine and a job's timeout bounds each image: a large app on a slow machine
    // must not drop its last images to the hosted API's 10-minute call deadline.
    local = { maxBatchSize: 1, deadline: EMBEDDED_CALL_DEADLINE_MS }
    closeServer = () => server.close()
    options.onEmbeddedStart?.(endpoint)
  } else {
    endpoint = options.backend.endpoint
    apiKey = options.backend.apiKey.reveal()
  }
  try {
    const { createClient } = await import('../client.ts')
    const client = createClient({
      apiKey,
      endpoint,
      ...(rateLimit !== undefined ? { rateLimit } : {}),
      ...(concurrency !== undefined ? { maxInFlightJobs: concurrency } : {}),
      maxAttempts: options.retries + 1,
      ...local,
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    })
    return {
      optimize: (inputs, params, call) => client.optimize(inputs, params, call),
      requests: () => client.stats.requests,
      stats: () => client.stats,
      tokensLeft: () => client.stats.tokensLeft,
      engineVersion: () => (options.backend.kind === 'embedded' ? statusEngine(endpoint) : Promise.resolve(null)),
      close: async () => {
        await client.close?.()
        await closeServer()
      },
    }
  } catch (error) {
    await closeServer()
    throw error
  }
}

/** `software.engine` from the embedded server's health route (no key, not rate-limited like the API). */
async function statusEngine(endpoint: string): Promise<string | null> {
  try {
    const response = await fetch(new URL('/status', endpoint), { signal: AbortSignal.timeout(5000) })
    const body = (await response.json()) as { software?: { engine?: unknown } }
    return typeof body.software?.engine === 'string' ? body.software.engine : null
  } catch {
    return null
  }
}

async function startEmbedded(): Promise<{ endpoint: string; apiKey: string; rateLimit: number; workers: number; close(): Promise<void> }> {
  let start
  try {
    start = (await import('../server.ts')).startEmbeddedServer
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new Error(
      `could not load the embedded optimizer (${reason}). It needs sharp: run \`npm install sharp\`, ` +
        'or set MEGAOPTIM_API_KEY to use the hosted MegaOptim API',
    )
  }
  return start()
}
