/**
 * `unplugin-megaoptim/server`: the MegaOptim-compatible server (docs/megaoptim-api.md, to the letter).
 *
 * The plugin starts the embedded default when no API key is set:
 * ```ts
 * const { endpoint, apiKey, close } = await startEmbeddedServer() // in memory, 127.0.0.1:0, unlimited key
 * ```
 * Teams self-host it with `megaoptim serve --data-dir DIR` (SQLite + files in DIR), or in code:
 * ```ts
 * const server = createMegaOptimServer({ dataDir: '/var/lib/megaoptim', rateLimit: 120 })
 * await server.listen({ host: '0.0.0.0', port: 8080 })
 * const { apiKey } = await server.createAccount({ name: 'CI', email: 'ci@example.com', tokens: -1 })
 * ```
 *
 * Decisions beyond the contract:
 * - every API answer is HTTP 200 with the envelope, even a malformed request or a crash (code 500);
 *   a download link that is unknown or expired is a real HTTP 404, since a download is not an API call;
 * - items that fail carry an extra `error` string saying why;
 * - tokens are reserved at submit (one per image) and the unspent part is given back when the job ends,
 *   so the balance can never go below zero; WebP versions are free;
 * - a job that outlives `jobTimeoutMs` or crashes the engine answers 504; a job interrupted by a crash
 *   runs again after a restart, and fails with 504 after `maxJobAttempts` interrupted runs;
 * - API keys are stored as their SHA-256 only.
 */
export { createMegaOptimServer, type MegaOptimServerHandle } from './server/server.ts'
export { startEmbeddedServer } from './server/embedded.ts'
export type { InternalServerOptions as MegaOptimServerOptions, EngineLike } from './server/options.ts'
export type { Account, EmbeddedServer, MegaOptimServer, ServerOptions, ServerStats } from './server/types.ts'
