import type { Agent } from 'undici'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.ts'
import { publicBase, resultBody, type ServerContext } from './context.ts'
import { lockDataDir } from './dir-lock.ts'
import { loadDefaultEngine, startEngineThreads } from './engine.ts'
import { errorEnvelope } from './envelope.ts'
import { JobRunner } from './jobs.ts'
import { generateApiKey } from './keys.ts'
import { serverLog } from './log.ts'
import { createOutboundAgent } from './net-guard.ts'
import { resolveServerOptions, type EngineLike, type InternalServerOptions, type ResolvedServerOptions } from './options.ts'
import { deliverCallback, type OutboundContext } from './outbound.ts'
import { MemoryStore } from './store/memory.ts'
import type { JobRecord, Store } from './store/types.ts'
import { sweep, type SweepResult } from './sweeper.ts'
import type { Account, MegaOptimServer, ServerStats } from './types.ts'

/** The server object, with a few extras for operators and tests beyond the public `MegaOptimServer`. */
export interface MegaOptimServerHandle extends MegaOptimServer {
  readonly options: ResolvedServerOptions
  /** Runs the sweeper now (it also runs every `sweepIntervalMs`). */
  sweep(): Promise<SweepResult>
  /** The store behind the server (opened on first use). */
  store(): Promise<Store>
  /** Callback deliveries still retrying. */
  pendingCallbacks(): Promise<void>
  /** Runs the workers without the API (`megaoptim worker`): only with a database other replicas serve. */
  work(): Promise<void>
}

async function openStore(options: ResolvedServerOptions): Promise<Store> {
  if (options.database !== undefined) {
    const { openPostgresStore } = await import('./store/postgres/store.ts')
    return openPostgresStore({ url: options.database, leaseMs: options.leaseMs })
  }
  if (options.dataDir === undefined) return new MemoryStore()
  const { openSqliteStore } = await import('./store/sqlite.ts')
  return openSqliteStore(options.dataDir)
}

/** A wildcard bind is reachable on loopback; `0.0.0.0` or `::` in a URL is no address to connect to. */
function formatUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' || host === '[::]' ? '::1' : host
  return `http://${reachable.includes(':') ? `[${reachable.replace(/^\[|\]$/g, '')}]` : reachable}:${port}`
}

/**
 * A MegaOptim-compatible server. Nothing is opened until `listen()` (or `createAccount()`), and native
 * modules load only then: better-sqlite3 with a `dataDir`, sharp at the first job.
 */
export function createMegaOptimServer(input: InternalServerOptions = {}): MegaOptimServerHandle {
  const options = resolveServerOptions(input)
  const stats: ServerStats = { requests: {}, totalRequests: 0 }
  let storePromise: Promise<Store> | undefined
  let app: FastifyInstance | undefined
  let runner: JobRunner | undefined
  let agent: Agent | undefined
  let threads: ReturnType<typeof startEngineThreads> | undefined
  /** The engine images run on: the options' own, or this server's engine threads, one per worker. */
  const engine = (): Promise<EngineLike> => {
    if (options.engine) return Promise.resolve(options.engine)
    if (!threads) {
      const started = (threads = startEngineThreads(Math.max(1, options.workers)))
      // sharp missing: the next image tries again, and says why.
      started.catch(() => {
        if (threads === started) threads = undefined
      })
    }
    return threads
  }
  const endEngine = async (): Promise<void> => {
    const t = threads
    threads = undefined
    if (t) await (await t.catch(() => undefined))?.close()
  }
  let sweepTimer: NodeJS.Timeout | undefined
  let baseUrl: string | undefined
  let closed = false
  let locked: Promise<() => Promise<void>> | undefined
  const callbacks = new Set<Promise<unknown>>()
  const callbackAbort = new AbortController()

  /**
   * One server per data dir, whoever opens the store first (`listen()` or `createAccount()`): the lock
   * comes before the database is opened, let alone migrated.
   */
  const lock = (): Promise<void> => {
    if (options.dataDir === undefined) return Promise.resolve()
    locked ??= lockDataDir(options.dataDir)
    const attempt = locked
    // A failed attempt (another server holds the dir) leaves nothing held: a later call tries again.
    attempt.catch(() => {
      if (locked === attempt) locked = undefined
    })
    return attempt.then(() => {})
  }
  const unlock = async (): Promise<void> => {
    const held = locked
    locked = undefined
    if (held) await (await held.catch(() => undefined))?.()
  }
  const store = (): Promise<Store> => {
    if (storePromise) return storePromise
    const opening = (storePromise = lock().then(() => openStore(options)))
    // A failed open (the dir is locked by another server, a bad file) is tried afresh next time.
    opening.catch(() => {
      if (storePromise === opening) storePromise = undefined
    })
    return opening
  }
  const sweepOptions = () => ({
    now: options.now(),
    downloadTtlMs: options.downloadTtlMs,
    orphanGraceMs: options.jobTimeoutMs + 60_000,
  })

  /** POSTs a finished job to its callback_url; one a shutdown interrupts stays pending for the next start. */
  function deliver(ctx: ServerContext, outbound: OutboundContext, job: JobRecord): void {
    const target = job.params.callbackUrl
    if (!target || job.callbackState !== 'pending' || closed) return
    // The address the client used at submit; the bind address (0.0.0.0) is no URL to download from.
    const base = options.publicUrl ?? job.params.publicBase ?? publicBase(ctx)
    const body: Promise<Record<string, unknown>> =
      job.status === 'done'
        ? resultBody(ctx, job, base)
        : Promise.resolve({ ...errorEnvelope(504, job.error ?? 'The job failed on the server.'), id: job.id })
    const delivery = body
      .then((b) =>
        deliverCallback(outbound, target, b, options.callbackRetryDelaysMs, callbackAbort.signal, (attempt, problem) => {
          if (problem !== null) serverLog(`callback for job ${job.id}, attempt ${attempt}: ${problem}`)
        }),
      )
      .then(async (delivered) => {
        if (callbackAbort.signal.aborted) return
        await ctx.store.settleCallback(job.id, delivered ? 'delivered' : 'failed')
      })
      .catch(() => {})
      .finally(() => callbacks.delete(delivery))
    callbacks.add(delivery)
  }

  const handle: MegaOptimServerHandle = {
    options,
    stats,

    get endpoint(): string {
      if (baseUrl === undefined) throw new Error('The server is not listening yet: await listen() first.')
      return `${options.publicUrl ?? baseUrl}/v1`
    },

    listen(opts = {}): Promise<string> {
      return start(opts)
    },

    async work(): Promise<void> {
      await start(null)
    },

    async createAccount({ name, email, tokens }): Promise<Account> {
      if (closed) throw new Error('The server was closed; create a new one.')
      if (typeof name !== 'string' || name.trim() === '') throw new TypeError(`name must be a non-empty string, got ${JSON.stringify(name)}`)
      if (typeof email !== 'string' || !email.includes('@')) throw new TypeError(`email must be an email address, got ${JSON.stringify(email)}`)
      if (!Number.isInteger(tokens) || tokens < -1) throw new TypeError(`tokens must be a whole number >= -1 (-1 = unlimited), got ${JSON.stringify(tokens)}`)
      const s = await store()
      const apiKey = generateApiKey()
      const account = await s.createAccount({ apiKey, name, email, tokens })
      return { name: account.name, email: account.email, apiKey, tokens: account.tokens }
    },

    store,

    async sweep() {
      return sweep(await store(), sweepOptions())
    },

    async pendingCallbacks() {
      await Promise.allSettled([...callbacks])
    },

    async close(): Promise<void> {
      if (closed) return
      closed = true
      clearInterval(sweepTimer)
      // Long-polls are woken by the preClose hook; in-flight requests end, then the jobs are settled.
      if (app) {
        // A stalled upload would hold app.close() until the request timeout: cut such connections
        // once the grace period is over.
        const server = app.server
        const force = setTimeout(() => server.closeAllConnections(), options.closeTimeoutMs)
        try {
          await app.close()
        } finally {
          clearTimeout(force)
        }
      }
      if (runner) await runner.close()
      // After the runner: every image has let go of its thread by now.
      await endEngine()
      callbackAbort.abort()
      await Promise.allSettled([...callbacks])
      await agent?.close().catch(() => {})
      if (storePromise) await (await storePromise.catch(() => undefined))?.close()
      await unlock()
    },
  }
    /** Opens the store and starts the workers, and the API unless `http` is null (`work()`: workers alone). */
  async function start(http: { host?: string; port?: number } | null): Promise<string> {
    const opts = http ?? {}
    if (closed) throw new Error('The server was closed; create a new one.')
    if (app || runner) throw new Error('The server is already running.')
    // A failure before the port is open leaves nothing open or locked: a later listen() (or another
    // process) starts afresh.
    const abandon = async (): Promise<void> => {
      await app?.close().catch(() => {})
      app = undefined
      runner = undefined
      await agent?.close().catch(() => {})
      agent = undefined
      await endEngine()
      if (storePromise) await (await storePromise.catch(() => undefined))?.close()
      storePromise = undefined
      await unlock()
    }
    let s: Store
    try {
      s = await store()
    } catch (error) {
      await abandon()
      throw error
    }
    const outbound: OutboundContext = {
      agent: (agent = createOutboundAgent({ allowPrivateUrls: options.allowPrivateUrls, timeoutMs: options.fetchTimeoutMs })),
      allowPrivateUrls: options.allowPrivateUrls,
      timeoutMs: options.fetchTimeoutMs,
    }
    const ctx: ServerContext = {
      options,
      store: s,
      runner: undefined as unknown as JobRunner,
      stats,
      listenUrl: () => baseUrl ?? 'http://127.0.0.1',
      engineVersion: () =>
        options.engine
          ? Promise.resolve(options.engine.version)
          : loadDefaultEngine().then(
              (e) => e.version,
              () => null,
            ),
    }
    ctx.runner = runner = new JobRunner(s, options, outbound, { onFinished: (job) => deliver(ctx, outbound, job), engine })
    if (http) {
      const host = opts.host ?? '127.0.0.1'
      try {
        app = await buildApp(ctx)
        await app.listen({ host, port: opts.port ?? 0 })
      } catch (error) {
        await abandon()
        throw error
      }
      const address = app.server.address()
      const port = typeof address === 'object' && address ? address.port : (opts.port ?? 0)
      baseUrl = formatUrl(host, port)
    } else if (options.workers === 0 || options.database === undefined) {
      // Workers alone serve a fleet: they need the shared database and something to run it with.
      await abandon()
      throw new TypeError('a process that only runs workers needs a database and at least 1 worker')
    }
    // Jobs a killed predecessor left behind run again (or fail cleanly) now that downloads have a base URL.
    const recovered = await runner.recover()
    // Callbacks a previous run could not finish delivering.
    for (const job of await s.pendingCallbacks()) deliver(ctx, outbound, job)
    if (recovered.resumed > 0) {
      serverLog(
        `unfinished jobs from a previous run: ${recovered.resumed} resumed` +
          (recovered.givenUp > 0
            ? `; ${recovered.givenUp} image(s) given up after ${options.maxItemTries} interrupted runs`
            : ''),
      )
    }
    const sweepNow = (): void => {
      void sweep(s, sweepOptions()).catch((error: unknown) => serverLog(`sweeper: ${(error as Error).message}`))
    }
    // Once now, for what a previous run left behind, then periodically.
    sweepNow()
    sweepTimer = setInterval(sweepNow, options.sweepIntervalMs)
    sweepTimer.unref()
    // Warm the engine up now, so that the first job and /status do not wait for sharp to load; a missing
    // sharp surfaces at the first job, with its own message.
    if (options.workers > 0) engine().catch(() => {})
    return baseUrl ?? ''
  }

  return handle
}
