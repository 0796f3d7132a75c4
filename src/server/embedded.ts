import type { InternalServerOptions } from './options.ts'
import { createMegaOptimServer } from './server.ts'
import type { EmbeddedServer } from './types.ts'

/**
 * The plugin's default when no API key is set: an in-memory server on loopback with one unlimited
 * account, and a rate limit no build reaches. The plugin talks to it over HTTP like to the hosted API.
 */
export async function startEmbeddedServer(options: InternalServerOptions = {}): Promise<EmbeddedServer> {
  const server = createMegaOptimServer({
    rateLimit: 1_000_000,
    healthRateLimit: 1_000_000,
    ...options,
  })
  try {
    await server.listen({ host: '127.0.0.1', port: 0 })
    const account = await server.createAccount({ name: 'embedded', email: 'embedded@localhost', tokens: -1 })
    return {
      endpoint: server.endpoint,
      apiKey: account.apiKey,
      stats: server.stats,
      close: () => server.close(),
    }
  } catch (error) {
    await server.close()
    throw error
  }
}
