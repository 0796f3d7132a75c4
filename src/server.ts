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
 * - images are scheduled one by one, oldest job first with a fair share per account (the store decides,
 *   so a restart resumes exactly the images that had not finished); a try counts when a worker starts an
 *   image, and one interrupted `maxItemTries` times is given up (`success: 0`), not its whole job;
 * - the workers share a pixel budget checked from the header before decoding (`pixelBudget`), and each
 *   image has a time budget (`itemTimeoutMs`) after which the original is answered as "no gain";
 * - a job whose images were worked on longer than `jobTimeoutMs` in all, or that crashes the engine,
 *   answers 504 (waiting for a worker does not count);
 * - download links come from `publicUrl` or the listening address; the Host header only with `trustProxy`;
 * - no stored text, answer, callback or log line holds URL credentials (`user:pass@`);
 * - API keys are stored as their SHA-256 only.
 */
export { createMegaOptimServer, type MegaOptimServerHandle } from './server/server.ts'
export { startEmbeddedServer } from './server/embedded.ts'
export type { InternalServerOptions as MegaOptimServerOptions, EngineLike } from './server/options.ts'
export type { Account, EmbeddedServer, MegaOptimServer, ServerOptions, ServerStats } from './server/types.ts'
