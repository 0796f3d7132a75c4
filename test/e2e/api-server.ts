import { createMegaOptimServer, type MegaOptimServerHandle } from '../../src/server.ts'

/**
 * The real compatible server on loopback with one unlimited account, unthrottled so tests never wait on
 * pacing. Kept apart from harness.ts, which child builds import and which must not load the server.
 */
export async function startApiServer(): Promise<{ server: MegaOptimServerHandle; apiKey: string }> {
  const server = createMegaOptimServer({ rateLimit: 100_000 })
  await server.listen({ host: '127.0.0.1', port: 0 })
  const { apiKey } = await server.createAccount({ name: 'ci', email: 'ci@example.com', tokens: -1 })
  return { server, apiKey }
}
