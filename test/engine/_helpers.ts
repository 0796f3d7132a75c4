import { readFileSync } from 'node:fs'
import sharp from 'sharp'
import { expect } from 'vitest'
import { EngineError, type EngineParams } from '../../src/engine/index.ts'

export function fixture(name: string): Buffer {
  return readFileSync(new URL(`../fixtures/images/${name}`, import.meta.url))
}

export function params(overrides: Partial<EngineParams> = {}): EngineParams {
  return { compression: 'intelligent', webp: false, cmykToRgb: true, keepExif: false, maxWidth: 0, maxHeight: 0, ...overrides }
}

/** Decoded pixels in one layout (sRGB + alpha, auto-oriented, all frames), for exact comparisons. */
export async function rgba(bytes: Uint8Array): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(bytes, { animated: true })
    .rotate()
    .toColourspace('srgb')
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true })
  return { data, width: info.width, height: info.height }
}

/** The EngineError a promise rejects with (and that it does reject with one). */
export async function failure(p: Promise<unknown>): Promise<EngineError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(EngineError)
  return err as EngineError
}
