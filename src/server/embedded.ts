import type { InternalServerOptions } from './options.ts'
import { createMegaOptimServer } from './server.ts'
import type { EmbeddedServer } from './types.ts'

/** Far above what any build sends: the embedded server is there to optimize, not to throttle. */
const EMBEDDED_RATE_LIMIT = 1_000_000

/**
 * The plugin's default when no API key is set: an in-memory server on loopback with one unlimited
 * account, and a rate limit no build reaches. The plugin talks to it over HTTP like to the hosted API.
 */
export async function startEmbeddedServer(options: InternalServerOptions = {}): Promise<EmbeddedServer> {
  const rateLimit = options.rateLimit ?? EMBEDDED_RATE_LIMIT
  const server = createMegaOptimServer({
    healthRateLimit: EMBEDDED_RATE_LIMIT,
    ...options,
    rateLimit,
  })
  try {
    await server.listen({ host: '127.0.0.1', port: 0 })
    const account = await server.createAccount({ name: 'embedded', email: 'embedded@localhost', tokens: -1 })
    return {
      endpoint: server.endpoint,
      apiKey: account.apiKey,
      rateLimit,
      stats: server.stats,
      close: () => server.close(),
    }
  } catch (error) {
    await server.close()
    throw error
  }
}
