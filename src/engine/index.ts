import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createRequire } from 'node:module'
import { EngineError, toEngineError } from './errors.ts'
import { loadSharp } from './load-sharp.ts'
import { optimizeLossless } from './lossless.ts'
import { optimizeLossy } from './lossy.ts'
import { throwIfAborted, type Encoded } from './run.ts'
import { sniffFormat } from '../contract/formats.ts'
import { DEFAULT_LIMIT_INPUT_PIXELS, mustChange, openSource } from './source.ts'
import type { EngineOptions, EngineParams, EngineResult } from './types.ts'
import { makeWebp } from './webp.ts'

export { EngineError, type EngineErrorCode } from './errors.ts'
export { sniffFormat } from '../contract/formats.ts'
export { DEFAULT_LIMIT_INPUT_PIXELS } from './source.ts'
export type * from './types.ts'

/** Bump whenever the engine's own choices change what it outputs. */
const ALGORITHM_VERSION = 11

/**
 * Changes whenever output could change: our algorithm, or the sharp/libvips build doing the encoding.
 * Part of the plugin's cache key.
 */
export const ENGINE_VERSION = `megaoptim-engine/${ALGORITHM_VERSION} sharp/${sharpVersion()}`

function sharpVersion(): string {
  try {
    // sharp's exports map hides package.json: walk up from its entry point.
    let dir = dirname(createRequire(import.meta.url).resolve('sharp'))
    for (;;) {
      const file = join(dir, 'package.json')
      if (existsSync(file)) {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string }
        if (pkg.name === 'sharp' && pkg.version) return pkg.version
      }
      const parent = dirname(dir)
      if (parent === dir) return 'unknown'
      dir = parent
    }
  } catch {
    return 'missing'
  }
}

/** The contract's result, plus what produced it (for logs and the benchmark). */
export interface EngineOutput extends EngineResult {
  /** e.g. `jpeg q72 4:2:0`, `png palette q80`, or `input` when the input was kept. */
  settings: string
}

/**
 * Optimize one image. The output keeps the input's format; `data` is the input itself when nothing could
 * be gained. Throws an `EngineError` (stable `code`, a reason that names what to do) on bad input.
 */
export async function optimizeImage(
  input: Uint8Array,
  params: EngineParams,
  options: EngineOptions = {},
): Promise<EngineOutput> {
  if (!(input instanceof Uint8Array) || input.length === 0) {
    throw new EngineError('ENGINE_EMPTY_INPUT', 'The file is empty; there is nothing to optimize.')
  }
  const format = sniffFormat(input)
  if (!format) {
    throw new EngineError(
      'ENGINE_UNSUPPORTED_FORMAT',
      'The file is not a JPEG, PNG, GIF or WebP image (judged by its content, not its name); the original is kept.',
    )
  }
  const { signal } = options
  throwIfAborted(signal)
  const sharp = await loadSharp()
  const limit = options.limitInputPixels ?? DEFAULT_LIMIT_INPUT_PIXELS
  try {
    const src = await openSource(sharp, input, format, params, limit)
    throwIfAborted(signal)
    let main: Encoded | null =
      params.compression === 'lossless'
        ? await optimizeLossless(src, params, signal)
        : await optimizeLossy(src, params, signal)
    // Never larger than the input, unless the input itself is not acceptable (resize, CMYK→sRGB).
    if (main && main.data.length >= input.length && !mustChange(src, params)) main = null
    throwIfAborted(signal)
    const webp = params.webp ? await makeWebp(src, params, signal) : null
    return {
      format,
      originalSize: input.length,
      data: main ? main.data : input,
      width: main ? main.width : src.width,
      height: main ? main.height : src.height,
      webp: webp && webp.length < input.length ? webp : null,
      settings: main ? (main.settings ?? 'encoded') : 'input',
    }
  } catch (err) {
    throw toEngineError(err, format)
  }
}
