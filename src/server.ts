/**
 * `unplugin-megaoptim/server`: the MegaOptim-compatible server (see docs/megaoptim-api.md).
 * `startEmbeddedServer()` is what the plugin starts when no API key is set; `createMegaOptimServer()` is
 * what `megaoptim serve` runs.
 */
export { createMegaOptimServer, type MegaOptimServerHandle } from './server/server.ts'
export { startEmbeddedServer } from './server/embedded.ts'
export type { InternalServerOptions as MegaOptimServerOptions, EngineLike } from './server/options.ts'
export type { Account, EmbeddedServer, MegaOptimServer, ServerOptions, ServerStats } from './server/types.ts'
