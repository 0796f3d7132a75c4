/**
 * unplugin-megaoptim: optimizes the images a production build emits, with the MegaOptim API or the
 * embedded compatible server, for Vite, Rollup, Rolldown, webpack, Rspack and esbuild.
 */
import { createUnplugin, type UnpluginInstance } from 'unplugin'
import { unpluginFactory } from './core/plugin.ts'
import type { Options } from './core/options.ts'

export const megaoptim: UnpluginInstance<Options | undefined, false> = /* #__PURE__ */ createUnplugin(unpluginFactory)

export default megaoptim

export { resolveOptions, OptionsError, DEFAULT_ENDPOINT, DEFAULT_CACHE_DIR } from './core/options.ts'
export type { Options, ResolvedOptions, Compression, LogLevel } from './core/options.ts'
export { ImageCache } from './core/cache.ts'
export { BuildError } from './core/pipeline.ts'
export type { BuildReport, FileReport, Totals } from './core/report.ts'
