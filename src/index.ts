/**
 * unplugin-megaoptim: optimizes the images a production build emits, with the MegaOptim API or the
 * embedded compatible server, for Vite, Rollup, Rolldown, webpack, Rspack and esbuild.
 *
 * ```ts
 * import megaoptim from 'unplugin-megaoptim/vite'        // or /rollup, /rolldown, /webpack, /rspack, /esbuild
 * export default { plugins: [megaoptim({ webp: true })] }
 * ```
 *
 * When it runs: Vite `build` only (never the dev server); webpack/Rspack with `mode: 'production'`;
 * every Rollup, Rolldown and esbuild build (they have no dev mode of their own; the cache keeps rebuilds
 * free). Where: with `apiKey` or `MEGAOPTIM_API_KEY`, the MegaOptim API (or `endpoint`); without, the
 * embedded server, started in-process on the first cache miss only.
 */
import { createUnplugin, type UnpluginInstance } from 'unplugin'
import { unpluginFactory } from './core/plugin.ts'
import { resolveOptions, type Options } from './core/options.ts'

const instance = createUnplugin(unpluginFactory)

/**
 * unplugin runs the factory for webpack, Rspack and esbuild only once the bundler applies the plugin;
 * validating here too makes a bad option fail where the user wrote it, as it does for the others.
 */
function validatedFirst<R>(create: (options?: Options) => R): (options?: Options) => R {
  return (options) => {
    resolveOptions(options ?? {}, { env: process.env, cwd: process.cwd() })
    return create(options)
  }
}

export const megaoptim: UnpluginInstance<Options | undefined, false> = /* #__PURE__ */ Object.freeze({
  ...instance,
  webpack: validatedFirst(instance.webpack),
  rspack: validatedFirst(instance.rspack),
  esbuild: validatedFirst(instance.esbuild),
})

export default megaoptim

export { resolveOptions, OptionsError, DEFAULT_ENDPOINT, DEFAULT_CACHE_DIR } from './core/options.ts'
export type { Options, ResolvedOptions, Compression, LogLevel } from './core/options.ts'
export { ImageCache } from './core/cache.ts'
export { BuildError } from './core/pipeline.ts'
export type { BuildReport, FileReport, Totals } from './core/report.ts'
