/**
 * Rollup, Rolldown and Vite: images are bundle assets by `generateBundle`. Their `source` is replaced in
 * place (the bundle object itself is never reassigned: Rolldown forbids it), an asset whose name holds the
 * hash of its old bytes is re-emitted under the hash of its new bytes with every reference updated, WebP
 * siblings are emitted with `this.emitFile`, and the emitted HTML and CSS are pointed at them.
 */
import type { AssetResult, BuildSession } from '../pipeline.ts'
import { followingName, isTextFile, replaceNames } from '../rewrite/names.ts'
import { webpRewriters } from '../rewrite/webp-references.ts'

/** The part of an output asset this adapter touches (Rollup's and Rolldown's shapes both fit). */
export interface BundleAsset {
  type: 'asset'
  fileName: string
  source: string | Uint8Array
  names?: readonly string[]
  originalFileNames?: readonly string[]
}

/** The part of an output chunk this adapter touches; `viteMetadata` feeds Vite's manifests. */
export interface BundleChunk {
  type: 'chunk'
  fileName: string
  code: string
  viteMetadata?: { importedAssets?: Set<string> }
}

export interface BundleLike {
  [fileName: string]: { type: string; fileName: string } | BundleAsset | BundleChunk
}

export interface EmitContext {
  emitFile(file: { type: 'asset'; fileName: string; source: Uint8Array | string; name?: string; originalFileName?: string }): string
}

export function toBytes(source: string | Uint8Array): Uint8Array {
  return typeof source === 'string' ? new Uint8Array(Buffer.from(source, 'utf8')) : source
}

function isAsset(item: BundleLike[string] | undefined): item is BundleAsset {
  return item?.type === 'asset'
}

function isChunk(item: BundleLike[string] | undefined): item is BundleChunk {
  return item?.type === 'chunk'
}

function textOf(asset: BundleAsset): string {
  return typeof asset.source === 'string' ? asset.source : Buffer.from(asset.source).toString('utf8')
}

/** Options the Vite adapter adds: images outside the bundle (public/ copies) that have WebP siblings. */
export interface BundleExtras {
  siblingsOutsideBundle?: ReadonlySet<string> | Promise<ReadonlySet<string>>
}

/** Optimizes every wanted image asset of `bundle` in place, renames what changed, and points HTML and CSS at the siblings. */
export async function optimizeBundle(session: BuildSession, bundle: BundleLike, context: EmitContext, extras: BundleExtras = {}): Promise<void> {
  const assets = Object.values(bundle).filter(isAsset).filter((asset) => session.wants(asset.fileName))
  const originals = new Map(assets.map((asset) => [asset.fileName, toBytes(asset.source)]))
  const results = await session.process(assets.map((asset) => ({ fileName: asset.fileName, data: originals.get(asset.fileName)! })))
  const renames = await replaceChanged(session, bundle, context, results, originals)
  session.renameFiles(renames)
  let rewritten = renames.size > 0 ? updateReferences(bundle, renames) : 0

  const siblings = new Set(await extras.siblingsOutsideBundle ?? [])
  for (const result of results) {
    const fileName = renames.get(result.fileName) ?? result.fileName
    const sibling = `${fileName}.webp`
    if (!result.webp || sibling in bundle) continue
    context.emitFile({ type: 'asset', fileName: sibling, source: result.webp })
    siblings.add(fileName)
  }
  rewritten += await pointAtSiblings(bundle, siblings)
  session.noteReferences(rewritten, renames.size)
}

/**
 * Puts the new bytes of each changed asset in the bundle: in place, or, when its name holds the hash of its
 * old bytes, re-emitted under the hash of its new ones. Returns the renames. Each asset's bytes cross into
 * the bundler once (Rolldown copies a `source` on every set and get).
 */
async function replaceChanged(
  session: BuildSession,
  bundle: BundleLike,
  context: EmitContext,
  results: AssetResult[],
  originals: ReadonlyMap<string, Uint8Array>,
): Promise<Map<string, string>> {
  const renames = new Map<string, string>()
  for (const result of results) {
    const asset = bundle[result.fileName]
    if (!result.changed || !isAsset(asset)) continue
    const next = await followingName(result.fileName, originals.get(result.fileName)!, result.data, await session.knownDigests(result))
    // Two images that came out identical under one name: the first takes it, the other keeps its own.
    if (!next || next in bundle) continue
    renames.set(result.fileName, next)
  }
  for (const result of results) {
    const asset = bundle[result.fileName]
    if (!result.changed || !isAsset(asset)) continue
    const to = renames.get(result.fileName)
    if (to === undefined) {
      asset.source = result.data
      continue
    }
    const [name, originalFileName] = [asset.names?.[0], asset.originalFileNames?.[0]]
    delete bundle[result.fileName]
    context.emitFile({
      type: 'asset',
      fileName: to,
      source: result.data,
      ...(name ? { name } : {}),
      ...(originalFileName ? { originalFileName } : {}),
    })
  }
  return renames
}

/** Rewrites the renamed names in every emitted chunk and text asset; returns how many references changed. */
function updateReferences(bundle: BundleLike, renames: ReadonlyMap<string, string>): number {
  let count = 0
  for (const item of Object.values(bundle)) {
    if (isChunk(item)) {
      const { text, replaced } = replaceNames(item.code, renames)
      if (replaced > 0) item.code = text
      count += replaced
      const imported = item.viteMetadata?.importedAssets
      for (const [from, to] of renames) {
        if (imported?.delete(from)) imported.add(to)
      }
    } else if (isAsset(item) && isTextFile(item.fileName)) {
      const { text, replaced } = replaceNames(textOf(item), renames)
      if (replaced > 0) item.source = text
      count += replaced
    }
  }
  return count
}

/** Adds WebP sources to the emitted HTML and `image-set()` copies to the emitted CSS; returns how many references now offer WebP. */
export async function pointAtSiblings(bundle: BundleLike, siblings: ReadonlySet<string>): Promise<number> {
  if (siblings.size === 0) return 0
  const rewriterFor = await webpRewriters()
  let count = 0
  for (const item of Object.values(bundle)) {
    if (!isAsset(item)) continue
    const rewrite = rewriterFor(item.fileName)
    if (!rewrite) continue
    const { text, rewritten } = rewrite(textOf(item), item.fileName, siblings)
    if (rewritten > 0) item.source = text
    count += rewritten
  }
  return count
}
