/**
 * The unplugin factory: one set of options, one adapter per bundler family, each reaching its bundler's
 * native API through unplugin's per-bundler keys. Options are validated here, when the plugin is created,
 * so a bad value fails the build before anything is bundled.
 */
import path from 'node:path'
import type { UnpluginFactory } from 'unplugin'
import type { Logger as ViteLogger, ResolvedConfig } from 'vite'
import { optimizeBundle, type BundleLike, type EmitContext } from './adapters/rollup.ts'
import { finishPublicImages, publicSiblings, startPublicImages, type PublicRun } from './adapters/vite-public.ts'
import { webpNegotiation } from './adapters/vite-preview.ts'
import { applyWebpackLike } from './adapters/webpack.ts'
import { setupEsbuild } from './adapters/esbuild.ts'
import { resolveOptions, type Options, type ResolvedOptions } from './options.ts'
import { BuildSession } from './pipeline.ts'
import { consoleLogger, type Logger } from './report.ts'

export const PLUGIN_NAME = 'unplugin-megaoptim'

interface WarnContext {
  warn(message: string): void
}

function rollupLogger(context: WarnContext): Logger {
  return { info: consoleLogger.info, warn: (message) => context.warn(message) }
}

function viteLogger(logger: ViteLogger): Logger {
  return { info: (message) => logger.info(message), warn: (message) => logger.warn(message) }
}

async function runSession(options: ResolvedOptions, logger: Logger, work: (session: BuildSession) => Promise<void>): Promise<void> {
  const session = new BuildSession(options, { logger })
  try {
    await work(session)
  } finally {
    await session.finish()
  }
}

/** Vite's per-environment config when the hook runs in an environment (Vite 6+), else the top-level one. */
function environmentConfig(context: unknown, fallback: ResolvedConfig): ResolvedConfig {
  const environment = (context as { environment?: { config?: ResolvedConfig } }).environment
  return environment?.config ?? fallback
}

export const unpluginFactory: UnpluginFactory<Options | undefined, false> = (rawOptions = {}) => {
  const options = resolveOptions(rawOptions, { env: process.env, cwd: process.cwd() })
  // Switched off: no hook at all, so nothing is read, started or cached.
  if (!options.enabled) return { name: PLUGIN_NAME }

  // Vite: relative `cache`/`report` paths follow the project root, which is known only once resolved.
  let viteConfig: ResolvedConfig | undefined
  let viteOptions = options
  /** Sessions kept open from `generateBundle` to `writeBundle` to put the public-dir images in place. */
  const pending = new Map<string, { session: BuildSession; run: PublicRun }>()

  /** Finishes every open session, even when one fails (each may hold an embedded server), then rethrows. */
  async function finishPending(): Promise<void> {
    const sessions = [...pending.values()]
    pending.clear()
    const settled = await Promise.allSettled(sessions.map(({ session }) => session.finish()))
    const failed = settled.find((s) => s.status === 'rejected')
    if (failed) throw failed.reason
  }

  return {
    name: PLUGIN_NAME,
    enforce: 'post',

    rollup: {
      async generateBundle(_output, bundle) {
        await runSession(options, rollupLogger(this), (session) =>
          optimizeBundle(session, bundle as unknown as BundleLike, this as unknown as EmitContext),
        )
      },
    },

    rolldown: {
      async generateBundle(_output, bundle) {
        await runSession(options, rollupLogger(this), (session) =>
          optimizeBundle(session, bundle as unknown as BundleLike, this as unknown as EmitContext),
        )
      },
    },

    vite: {
      // Production builds, and `vite preview` for WebP negotiation; never the dev server.
      apply: (_config, env) => env.command === 'build' || env.isPreview === true,
      configResolved(config) {
        viteConfig = config
        viteOptions = resolveOptions(rawOptions, { env: process.env, cwd: config.root })
      },
      async generateBundle(output, bundle) {
        const config = environmentConfig(this, viteConfig!)
        const session = new BuildSession(viteOptions, { logger: viteLogger(config.logger) })
        // Vite copies publicDir into outDir before writing the bundle: its images are optimized from the
        // sources alongside the bundle's, and put on the copies in writeBundle.
        const dir = output.dir
        const keepOpen = Boolean(config.build.write && config.build.copyPublicDir && config.publicDir && dir)
        try {
          const run = keepOpen ? startPublicImages(session, config.publicDir, new Set(Object.keys(bundle))) : null
          if (run) pending.set(dir!, { session, run })
          // HTML and CSS can name the public images' WebP siblings only once those are known.
          await optimizeBundle(session, bundle as unknown as BundleLike, this as unknown as EmitContext, {
            ...(run ? { siblingsOutsideBundle: publicSiblings(run) } : {}),
          })
        } finally {
          if (!keepOpen) await session.finish()
        }
      },
      async writeBundle(output) {
        const dir = output.dir
        const entry = dir ? pending.get(dir) : undefined
        if (!dir || !entry) return
        pending.delete(dir)
        try {
          await finishPublicImages(entry.session, entry.run, dir)
        } finally {
          await entry.session.finish()
        }
      },
      configurePreviewServer(server) {
        const { root, build } = server.config
        server.middlewares.use(webpNegotiation(path.resolve(root, build.outDir), server.config.base))
      },
      // A build that failed between generateBundle and writeBundle still reports and stops the embedded server.
      async closeBundle() {
        await finishPending()
      },
    },

    webpack(compiler) {
      applyWebpackLike(compiler, options)
    },

    rspack(compiler) {
      applyWebpackLike(compiler, options)
    },

    esbuild: {
      setup(build) {
        setupEsbuild(build, options)
      },
    },
  }
}
