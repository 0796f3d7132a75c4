/**
 * WebP in emitted CSS: a declaration whose `url()` names an image with a WebP sibling is kept, and the same
 * declaration follows it with each such `url()` turned into `image-set(url("….webp") type("image/webp"),
 * url("…") type("image/png"))`. Browsers without `image-set()` drop the copy and keep the first one.
 * Parsed with postcss (values with postcss-value-parser); everything else is printed back as it was.
 */
import postcss from 'postcss'
import valueParser from 'postcss-value-parser'
import type { RewriteResult } from './html.ts'
import { mimeOf, resolveReference, webpUrl } from './resolve.ts'

const IMAGE_SET = /(^|[^-\w])(-webkit-)?image-set\(/i

function quoted(url: string): string {
  return `"${url.replace(/["\\\n]/g, (c) => (c === '\n' ? '\\a ' : `\\${c}`))}"`
}

/** The declaration value with every `url()` that has a sibling as an `image-set()`, or null if none has. */
function withImageSets(value: string, cssFile: string, siblings: ReadonlySet<string>): { value: string; count: number } | null {
  const parsed = valueParser(value)
  let count = 0
  parsed.walk((node) => {
    if (node.type !== 'function' || node.value.toLowerCase() !== 'url') return
    const url = node.nodes.length === 1 ? node.nodes[0]!.value : valueParser.stringify(node.nodes)
    const file = resolveReference(url, cssFile, siblings)
    const mime = file && mimeOf(file)
    if (!file || !mime) return false
    count++
    const replacement = `image-set(url(${quoted(webpUrl(url))}) type("image/webp"), url(${quoted(url.trim())}) type("${mime}"))`
    Object.assign(node, { type: 'word', value: replacement, nodes: [] })
    return false
  })
  return count === 0 ? null : { value: parsed.toString(), count }
}

/** Adds `image-set()` fallbacks to `css` (the emitted file `cssFile`) for the images among `siblings`. */
export function addImageSets(css: string, cssFile: string, siblings: ReadonlySet<string>): RewriteResult {
  if (siblings.size === 0 || !/url\(/i.test(css)) return { text: css, rewritten: 0 }
  let root: postcss.Root
  try {
    root = postcss.parse(css, { from: undefined })
  } catch {
    return { text: css, rewritten: 0 } // not CSS postcss can read: shipped as the bundler made it
  }
  let rewritten = 0
  root.walkDecls((decl) => {
    if (!/url\(/i.test(decl.value) || IMAGE_SET.test(decl.value)) return
    // Already followed by its image-set() copy (a second pass over the same file).
    const next = decl.next()
    if (next?.type === 'decl' && next.prop === decl.prop && IMAGE_SET.test(next.value)) return
    const result = withImageSets(decl.value, cssFile, siblings)
    if (!result) return
    decl.cloneAfter({ value: result.value })
    rewritten += result.count
  })
  return rewritten === 0 ? { text: css, rewritten: 0 } : { text: root.toString(), rewritten }
}
