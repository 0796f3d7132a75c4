/**
 * Rollup, Rolldown and Vite: images are bundle assets by `generateBundle`. Their `source` is replaced in
 * place (the bundle object itself is never reassigned: Rolldown forbids it) and WebP siblings are emitted
 * with `this.emitFile`.
 */
import type { BuildSession } from '../pipeline.ts'

/** The part of an output asset this adapter touches (Rollup's and Rolldown's shapes both fit). */
export interface BundleAsset {
  type: 'asset'
  fileName: string
  source: string | Uint8Array
}

export interface BundleLike {
  [fileName: string]: { type: string; fileName: string } | BundleAsset
}

export interface EmitContext {
  emitFile(file: { type: 'asset'; fileName: string; source: Uint8Array }): string
}

export function toBytes(source: string | Uint8Array): Uint8Array {
  return typeof source === 'string' ? new Uint8Array(Buffer.from(source, 'utf8')) : source
}

function isAsset(item: BundleLike[string]): item is BundleAsset {
  return item.type === 'asset'
}

/** Optimizes every wanted image asset of `bundle` in place. */
export async function optimizeBundle(session: BuildSession, bundle: BundleLike, context: EmitContext): Promise<void> {
  const assets = Object.values(bundle).filter(isAsset).filter((asset) => session.wants(asset.fileName))
  const results = await session.process(assets.map((asset) => ({ fileName: asset.fileName, data: toBytes(asset.source) })))
  for (const result of results) {
    const asset = bundle[result.fileName]
    if (result.changed && asset && isAsset(asset)) asset.source = result.data
    const sibling = `${result.fileName}.webp`
    if (result.webp && !(sibling in bundle)) {
      context.emitFile({ type: 'asset', fileName: sibling, source: result.webp })
    }
  }
}
