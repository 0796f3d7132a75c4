/**
 * The HTML and CSS rewriters that point references at WebP siblings, loaded only when a build has
 * siblings to point at: parse5, srcset and postcss-value-parser are a noticeable part of a warm build's
 * start-up, and a build without `webp` never needs them.
 */
import type { RewriteResult } from './html.ts'

export type Rewrite = (text: string, fileName: string, siblings: ReadonlySet<string>) => RewriteResult

/** Picks the rewriter for an emitted file by its name: HTML, CSS, or null for anything else. */
export type RewriterFor = (fileName: string) => Rewrite | null

export async function webpRewriters(): Promise<RewriterFor> {
  const [{ addWebpSources }, { addImageSets }] = await Promise.all([import('./html.ts'), import('./css.ts')])
  return (fileName) => (/\.html?$/i.test(fileName) ? addWebpSources : /\.css$/i.test(fileName) ? addImageSets : null)
}
