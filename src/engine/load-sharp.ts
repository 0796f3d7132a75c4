import type sharpModule from 'sharp'
import { EngineError } from './errors.ts'

export type Sharp = typeof sharpModule

let loading: Promise<Sharp> | undefined

/**
 * sharp is native: load it only when an image is optimized, so the hosted-API path installs nothing.
 * Its operation cache is off: every input is different, and the cache would only grow memory.
 */
export function loadSharp(): Promise<Sharp> {
  loading ??= import('sharp').then(
    (mod) => {
      const sharp = (mod as unknown as { default?: Sharp }).default ?? (mod as unknown as Sharp)
      sharp.cache(false)
      return sharp
    },
    (err: unknown) => {
      loading = undefined
      throw new EngineError(
        'ENGINE_SHARP_MISSING',
        'The image engine needs sharp, which could not be loaded. Install it with `npm install sharp` ' +
          '(it ships prebuilt binaries for Linux, macOS and Windows), or set an API key to use the hosted MegaOptim API.',
        { cause: err },
      )
    },
  )
  return loading
}
