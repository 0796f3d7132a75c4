/**
 * WebP in emitted HTML: an `<img>` whose `src` or `srcset` names an image with a WebP sibling is wrapped in
 * `<picture>` with a `<source type="image/webp">` before it; an `<img>` already inside a `<picture>` gets
 * the source only. The document is parsed with parse5 and edited at the parser's source offsets, so
 * every byte outside the inserted tags stays as it was.
 */
import { parse, type DefaultTreeAdapterMap } from 'parse5'
import { parseSrcset, stringifySrcset } from 'srcset'
import { resolveReference, webpUrl } from './resolve.ts'

type Node = DefaultTreeAdapterMap['node']
type Element = DefaultTreeAdapterMap['element']

export interface RewriteResult {
  text: string
  /** References now backed by a WebP source. */
  rewritten: number
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;')
}

function attribute(element: Element, name: string): string | undefined {
  return element.attrs.find((a) => a.name === name)?.value
}

function isElement(node: Node): node is Element {
  return 'tagName' in node
}

function* elements(node: Node): Generator<Element> {
  if (isElement(node)) yield node
  // A <template>'s children live in its content fragment.
  const content = isElement(node) && node.tagName === 'template' ? (node as DefaultTreeAdapterMap['template']).content : null
  for (const child of content?.childNodes ?? ('childNodes' in node ? node.childNodes : [])) yield* elements(child)
}

/**
 * The `srcset` for the WebP source of `img`, with how many of its candidates were switched to a sibling;
 * null when none has one. Candidates without a sibling keep their URL: the browser may still pick them.
 */
function webpSrcset(img: Element, htmlFile: string, siblings: ReadonlySet<string>): { srcset: string; count: number } | null {
  const srcset = attribute(img, 'srcset')
  const src = attribute(img, 'src')
  let candidates: { url: string; width?: number; density?: number }[]
  if (srcset?.trim()) {
    try {
      candidates = parseSrcset(srcset)
    } catch {
      return null // not a srcset the browser could use either: leave the element alone
    }
  } else if (src?.trim()) {
    candidates = [{ url: src.trim() }]
  } else {
    return null
  }
  let count = 0
  const mapped = candidates.map((candidate) => {
    const file = resolveReference(candidate.url, htmlFile, siblings)
    if (!file) return candidate
    count++
    return { ...candidate, url: webpUrl(candidate.url) }
  })
  return count === 0 ? null : { srcset: stringifySrcset(mapped), count }
}

/**
 * Adds WebP sources to `html` (the emitted file `htmlFile`) for the images among `siblings`, the output
 * files that have a `.webp` sibling next to them.
 */
export function addWebpSources(html: string, htmlFile: string, siblings: ReadonlySet<string>): RewriteResult {
  if (siblings.size === 0 || !/<img/i.test(html)) return { text: html, rewritten: 0 }
  const document = parse(html, { sourceCodeLocationInfo: true })
  const edits: { at: number; text: string }[] = []
  let rewritten = 0
  for (const element of elements(document)) {
    if (element.tagName !== 'img' || !element.sourceCodeLocation) continue
    const parent = element.parentNode && isElement(element.parentNode) ? element.parentNode : null
    const inPicture = parent?.tagName === 'picture'
    // A picture that already offers WebP is left as its author wrote it.
    if (inPicture && parent!.childNodes.some((n) => isElement(n) && n.tagName === 'source' && attribute(n, 'type')?.trim().toLowerCase() === 'image/webp')) continue
    const set = webpSrcset(element, htmlFile, siblings)
    if (!set) continue
    const sizes = attribute(element, 'sizes')
    const source = `<source type="image/webp" srcset="${escapeAttribute(set.srcset)}"${sizes ? ` sizes="${escapeAttribute(sizes)}"` : ''}>`
    const { startOffset, endOffset } = element.sourceCodeLocation
    if (inPicture) {
      // After the picture's own sources (art direction keeps priority), right before the fallback <img>.
      edits.push({ at: startOffset, text: source })
    } else {
      edits.push({ at: startOffset, text: `<picture>${source}` }, { at: endOffset, text: '</picture>' })
    }
    rewritten += set.count
  }
  if (edits.length === 0) return { text: html, rewritten: 0 }
  // Applied from the end so earlier offsets stay valid; a stable sort keeps same-offset inserts in order.
  edits.sort((a, b) => a.at - b.at)
  let text = html
  for (let i = edits.length - 1; i >= 0; i--) text = text.slice(0, edits[i]!.at) + edits[i]!.text + text.slice(edits[i]!.at)
  return { text, rewritten }
}
