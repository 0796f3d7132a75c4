/**
 * webpack and Rspack: image assets are optimized in `processAssets` at `PROCESS_ASSETS_STAGE_OPTIMIZE_SIZE`
 * with `compilation.updateAsset` (WebP siblings with `emitAsset`), in production mode only. Running before
 * the `OPTIMIZE_HASH` stage lets `realContentHash` see the final bytes.
 */
import type { Compiler as WebpackCompiler } from 'webpack'
import type { Compiler as RspackCompiler } from '@rspack/core'
import { BuildSession, finishCollectingFailure } from '../pipeline.ts'
import type { ResolvedOptions } from '../options.ts'
import type { Logger } from '../report.ts'

const NAME = 'unplugin-megaoptim'

/** The slice of webpack's and Rspack's APIs this adapter needs; both compilers provide it. */
interface Source {
  buffer(): Buffer
}
interface CompilationLike {
  hooks: { processAssets: { tapPromise(options: { name: string; stage: number }, fn: (assets: Record<string, unknown>) => Promise<void>): void } }
  getAsset(name: string): { source: Source; info: Record<string, unknown> } | undefined
  updateAsset(name: string, source: Source, info: (old: Record<string, unknown>) => Record<string, unknown>): void
  emitAsset(name: string, source: Source, info?: Record<string, unknown>): void
  warnings: unknown[]
  errors: unknown[]
}
interface CompilerLike {
  options: { mode?: string }
  webpack: {
    Compilation: { PROCESS_ASSETS_STAGE_OPTIMIZE_SIZE: number }
    sources: { RawSource: new (buffer: Buffer) => Source }
    WebpackError: new (message: string) => Error
  }
  hooks: { thisCompilation: { tap(name: string, fn: (compilation: CompilationLike) => void): void } }
  getInfrastructureLogger(name: string): { info(...args: unknown[]): void; warn(...args: unknown[]): void }
}

export function applyWebpackLike(rawCompiler: WebpackCompiler | RspackCompiler, options: ResolvedOptions): void {
  const compiler = rawCompiler as unknown as CompilerLike
  const { Compilation, sources, WebpackError } = compiler.webpack
  const infrastructure = compiler.getInfrastructureLogger(NAME)

  compiler.hooks.thisCompilation.tap(NAME, (compilation) => {
    // Dev servers and `mode: 'development'`/'none' builds are left alone.
    if (compiler.options.mode !== 'production') return
    compilation.hooks.processAssets.tapPromise(
      { name: NAME, stage: Compilation.PROCESS_ASSETS_STAGE_OPTIMIZE_SIZE },
      async (assets) => {
        const logger: Logger = {
          info: (message) => infrastructure.info(message),
          // In the compilation's warnings, so they show in the stats like any other build warning.
          warn: (message) => compilation.warnings.push(new WebpackError(message)),
        }
        const session = new BuildSession(options, { logger })
        try {
          const inputs = Object.keys(assets)
            .filter((name) => session.wants(name))
            .map((name) => ({ name, asset: compilation.getAsset(name) }))
            .filter(({ asset }) => asset && !asset.info.megaoptim)
            .map(({ name, asset }) => ({ fileName: name, data: new Uint8Array(asset!.source.buffer()) }))
          const results = await session.process(inputs)
          for (const result of results) {
            if (result.changed) {
              compilation.updateAsset(result.fileName, new sources.RawSource(Buffer.from(result.data)), (info) => ({
                ...info,
                minimized: true,
                megaoptim: true,
              }))
            }
            const sibling = `${result.fileName}.webp`
            if (result.webp && !compilation.getAsset(sibling)) {
              compilation.emitAsset(sibling, new sources.RawSource(Buffer.from(result.webp)), { megaoptim: true, minimized: true })
            }
          }
        } finally {
          const failure = await finishCollectingFailure(session)
          if (failure) compilation.errors.push(new WebpackError(failure))
        }
      },
    )
  })
}
