/**
 * webpack and Rspack: image assets are optimized in `processAssets` at `PROCESS_ASSETS_STAGE_OPTIMIZE_SIZE`
 * with `compilation.updateAsset` (WebP siblings with `emitAsset`), in production mode only. The emitted HTML
 * (html-webpack-plugin, HtmlRspackPlugin: `OPTIMIZE_INLINE`) and CSS are pointed at the siblings at
 * `SUMMARIZE`. All of it runs before the `OPTIMIZE_HASH` stage, so `realContentHash` sees the final bytes
 * and renames each changed image, and its sibling, which carries the same hash in its name, with every
 * reference to them.
 */
import type { Compiler as WebpackCompiler } from 'webpack'
import type { Compiler as RspackCompiler } from '@rspack/core'
import { BuildSession, finishCollectingFailure } from '../pipeline.ts'
import type { ResolvedOptions } from '../options.ts'
import type { Logger } from '../report.ts'
import { webpRewriters } from '../rewrite/webp-references.ts'

const NAME = 'unplugin-megaoptim'
/** webpack writes `[<name>] ` before each line of its infrastructure logger: our usual prefix, said once. */
const LOGGER_NAME = 'megaoptim'

/** The slice of webpack's and Rspack's APIs this adapter needs; both compilers provide it. */
interface Source {
  buffer(): Buffer
  source(): string | Buffer
}
interface CompilationLike {
  hooks: { processAssets: { tapPromise(options: { name: string; stage: number }, fn: (assets: Record<string, unknown>) => Promise<void>): void } }
  getAsset(name: string): { source: Source; info: Record<string, unknown> } | undefined
  getAssets(): readonly { name: string; info: Record<string, unknown> }[]
  updateAsset(name: string, source: Source, info: (old: Record<string, unknown>) => Record<string, unknown>): void
  emitAsset(name: string, source: Source, info?: Record<string, unknown>): void
  warnings: unknown[]
  errors: unknown[]
}
interface CompilerLike {
  options: { mode?: string }
  webpack: {
    Compilation: { PROCESS_ASSETS_STAGE_OPTIMIZE_SIZE: number; PROCESS_ASSETS_STAGE_SUMMARIZE: number; PROCESS_ASSETS_STAGE_REPORT: number }
    sources: { RawSource: new (content: Buffer | string) => Source }
    WebpackError: new (message: string) => Error
  }
  hooks: {
    thisCompilation: { tap(name: string, fn: (compilation: CompilationLike) => void): void }
    failed: { tap(name: string, fn: (error: Error) => void): void }
  }
  getInfrastructureLogger(name: string): { info(...args: unknown[]): void; warn(...args: unknown[]): void }
}

/** Marks a processed image with its name at optimize time, to follow renames made at later stages. */
const ORIGINAL_NAME = 'megaoptimName'

export function applyWebpackLike(rawCompiler: WebpackCompiler | RspackCompiler, options: ResolvedOptions): void {
  const compiler = rawCompiler as unknown as CompilerLike
  const { Compilation, sources, WebpackError } = compiler.webpack
  const infrastructure = compiler.getInfrastructureLogger(LOGGER_NAME)
  /** The session of the running compilation, from the optimize stage to the report stage. */
  let open: BuildSession | null = null
  /** Images of the running compilation given a `.webp` sibling, by their name at the optimize stage. */
  let withSiblings = new Set<string>()

  async function close(compilation: CompilationLike | null): Promise<void> {
    const session = open
    open = null
    if (!session) return
    const failure = await finishCollectingFailure(session)
    if (failure && compilation) compilation.errors.push(new WebpackError(failure))
  }

  compiler.hooks.thisCompilation.tap(NAME, (compilation) => {
    // Dev servers and `mode: 'development'`/'none' builds are left alone.
    if (compiler.options.mode !== 'production') return

    compilation.hooks.processAssets.tapPromise({ name: NAME, stage: Compilation.PROCESS_ASSETS_STAGE_OPTIMIZE_SIZE }, async (assets) => {
      const logger: Logger = {
        // Line by line: webpack labels only the first line of a message, which would misalign the table.
        info: (message) => {
          for (const line of message.split('\n')) infrastructure.info(line)
        },
        labelsInfo: true,
        // In the compilation's warnings, so they show in the stats like any other build warning.
        warn: (message) => compilation.warnings.push(new WebpackError(message)),
      }
      await close(compilation) // a previous compilation that never reached the report stage
      const session = new BuildSession(options, { logger })
      open = session
      withSiblings = new Set()
      try {
        const inputs = Object.keys(assets)
          .filter((name) => session.wants(name))
          .map((name) => ({ name, asset: compilation.getAsset(name) }))
          .filter(({ asset }) => asset && asset.info[ORIGINAL_NAME] === undefined)
          .map(({ name, asset }) => ({ fileName: name, data: new Uint8Array(asset!.source.buffer()) }))
        const results = await session.process(inputs)
        for (const result of results) {
          const name = result.fileName
          const source = compilation.getAsset(name)!.source
          compilation.updateAsset(name, result.changed ? new sources.RawSource(Buffer.from(result.data)) : source, (info) => ({
            ...info,
            ...(result.changed ? { minimized: true } : {}),
            [ORIGINAL_NAME]: name,
          }))
          const sibling = `${name}.webp`
          if (result.webp && !compilation.getAsset(sibling)) {
            compilation.emitAsset(sibling, new sources.RawSource(Buffer.from(result.webp)), { minimized: true, [ORIGINAL_NAME]: sibling })
            withSiblings.add(name)
          }
        }
      } catch (error) {
        await close(compilation)
        throw error
      }
    })

    // The HTML plugins have emitted their pages by now; realContentHash has not run yet.
    compilation.hooks.processAssets.tapPromise({ name: NAME, stage: Compilation.PROCESS_ASSETS_STAGE_SUMMARIZE }, async () => {
      const session = open
      if (!session || withSiblings.size === 0) return
      const rewriterFor = await webpRewriters()
      let rewritten = 0
      for (const asset of compilation.getAssets()) {
        const rewrite = rewriterFor(asset.name)
        const source = rewrite && compilation.getAsset(asset.name)?.source
        if (!rewrite || !source) continue
        const result = rewrite(source.source().toString(), asset.name, withSiblings)
        if (result.rewritten === 0) continue
        // A string source: realContentHash only rewrites hashes inside text assets.
        compilation.updateAsset(asset.name, new sources.RawSource(result.text), (info) => info)
        rewritten += result.rewritten
      }
      session.noteReferences(rewritten, 0)
    })

    // After realContentHash has renamed what changed: report under the names that ship, then finish.
    compilation.hooks.processAssets.tapPromise({ name: NAME, stage: Compilation.PROCESS_ASSETS_STAGE_REPORT }, async () => {
      const session = open
      if (!session) return
      const renamed = new Map<string, string>()
      for (const asset of compilation.getAssets()) {
        const original = asset.info[ORIGINAL_NAME]
        if (typeof original === 'string' && original !== asset.name) renamed.set(original, asset.name)
      }
      session.renameFiles(renamed)
      session.noteReferences(0, [...renamed.keys()].filter((name) => !name.endsWith('.webp') || !withSiblings.has(name.slice(0, -5))).length)
      await close(compilation)
    })
  })

  // A compilation that failed before the report stage still stops the embedded server.
  compiler.hooks.failed.tap(NAME, () => {
    close(null).catch((error: unknown) => infrastructure.warn(`could not finish after the failed compilation: ${error instanceof Error ? error.message : String(error)}`))
  })
}
