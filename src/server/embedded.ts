import os from 'node:os'
import type { InternalServerOptions } from './options.ts'
import { createMegaOptimServer } from './server.ts'
import type { EmbeddedServer } from './types.ts'

/** Far above what any build sends: the embedded server is there to optimize, not to throttle. */
const EMBEDDED_RATE_LIMIT = 1_000_000
/**
 * The plugin sends one image per job, so this bounds one image, not a batch: it only stops a hung engine.
 * A large PNG on a busy 2-core CI machine can take minutes, and a build must not lose it to the 300 s a
 * shared server gives a whole job.
 */
const EMBEDDED_JOB_TIMEOUT_MS = 30 * 60_000
/**
 * A shared server answers an image past its 30 s budget as "no gain" to stay fair; a build's own engine
 * has no one to be fair to, and a "no gain" would be cached, so a slow machine would lose that image's
 * savings for good. The budget here only stops a pathological image.
 */
const EMBEDDED_ITEM_TIMEOUT_MS = 10 * 60_000

/**
 * The plugin's default when no API key is set: an in-memory server on loopback with one unlimited
 * account, and a rate limit no build reaches. The plugin talks to it over HTTP like to the hosted API.
 */
export async function startEmbeddedServer(options: InternalServerOptions = {}): Promise<EmbeddedServer> {
  const rateLimit = options.rateLimit ?? EMBEDDED_RATE_LIMIT
  const workers = options.workers ?? os.availableParallelism()
  const server = createMegaOptimServer({
    healthRateLimit: EMBEDDED_RATE_LIMIT,
    jobTimeoutMs: EMBEDDED_JOB_TIMEOUT_MS,
    itemTimeoutMs: EMBEDDED_ITEM_TIMEOUT_MS,
    ...options,
    rateLimit,
    workers,
  })
  try {
    await server.listen({ host: '127.0.0.1', port: 0 })
    const account = await server.createAccount({ name: 'embedded', email: 'embedded@localhost', tokens: -1 })
    return {
      endpoint: server.endpoint,
      apiKey: account.apiKey,
      rateLimit,
      workers,
      stats: server.stats,
      close: () => server.close(),
    }
  } catch (error) {
    await server.close()
    throw error
  }
}
