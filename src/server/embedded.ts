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
 * One engine thread more than the machine has cores. Each image alternates between its thread's
 * JavaScript and libvips calls on other threads, and the hand-offs left a core idle about 8 % of the time
 * with one thread per core (1.83 of 2 cores busy on the large app's cold build). The extra image fills
 * them: that build took 17.6–17.8 s instead of 18.3–18.5 s (five runs each, 2 cores) for 1 % more CPU
 * and one more image's working set at the peak (0.95–1.08 GB against 0.85–1.00 GB). The pixel budget
 * still bounds what the workers decode together, so the largest images are no more at once than before.
 */
export function embeddedWorkers(): number {
  return os.availableParallelism() + 1
}

/**
 * The plugin's default when no API key is set: an in-memory server on loopback with one unlimited
 * account, and a rate limit no build reaches. The plugin talks to it over HTTP like to the hosted API.
 */
export async function startEmbeddedServer(options: InternalServerOptions = {}): Promise<EmbeddedServer> {
  const rateLimit = options.rateLimit ?? EMBEDDED_RATE_LIMIT
  const workers = options.workers ?? embeddedWorkers()
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
