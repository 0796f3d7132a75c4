/**
 * The reference rewriters on their own: HTML <picture>, CSS image-set(), the bundlers' content hash, names
 * that follow the bytes, and the preview server's Accept check.
 */
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { readFile } from 'node:fs/promises'
import { addWebpSources } from '../../src/core/rewrite/html.ts'
import { addImageSets } from '../../src/core/rewrite/css.ts'
import { resolveReference, webpUrl } from '../../src/core/rewrite/resolve.ts'
import { bundlerHashes, DigestMemo } from '../../src/core/rewrite/content-hash.ts'
import { sha256 } from '../../src/core/cache.ts'
import { followingName, replaceNames } from '../../src/core/rewrite/names.ts'
import { acceptsWebp } from '../../src/core/adapters/vite-preview.ts'

const siblings = new Set(['assets/hero-Ab12Cd34.png', 'img/moon.png', 'assets/photo-x.jpg'])

describe('HTML: <img> with a WebP sibling becomes <picture>', () => {
  it('wraps the <img>, keeps every attribute and every other byte', () => {
    const before = '<!doctype html>\n<html><head><title>t</title></head><body>\n  <!-- a comment, <img src="/assets/hero-Ab12Cd34.png"> -->\n' +
      '  <img src="/assets/hero-Ab12Cd34.png" alt="Hero &amp; co" class="big hero" width=640 height="480" loading="lazy" sizes="100vw">\n' +
      '  <img src="/other.png" alt="no sibling">\n</body></html>\n'
    const { text, rewritten } = addWebpSources(before, 'index.html', siblings)
    expect(rewritten).toBe(1)
    const img = '<img src="/assets/hero-Ab12Cd34.png" alt="Hero &amp; co" class="big hero" width=640 height="480" loading="lazy" sizes="100vw">'
    expect(text).toBe(before.replace(img, `<picture><source type="image/webp" srcset="/assets/hero-Ab12Cd34.png.webp" sizes="100vw">${img}</picture>`))
  })

  it('adds a source to an <img> already in a <picture>, after the author\'s sources, without a second <picture>', () => {
    const before = '<picture><source media="(min-width: 900px)" srcset="wide.png"><img src="../img/moon.png?v=2" alt="Moon"></picture>'
    const { text } = addWebpSources(before, 'pages/about.html', siblings)
    expect(text).toBe('<picture><source media="(min-width: 900px)" srcset="wide.png"><source type="image/webp" srcset="../img/moon.png.webp?v=2"><img src="../img/moon.png?v=2" alt="Moon"></picture>')
    expect(text.match(/<picture>/g)).toHaveLength(1)
  })

  it('leaves a <picture> that already offers WebP alone, and is idempotent', () => {
    const once = addWebpSources('<img src="img/moon.png">', 'index.html', siblings).text
    expect(addWebpSources(once, 'index.html', siblings)).toEqual({ text: once, rewritten: 0 })
  })

  it('maps each srcset candidate that has a sibling, keeps the others', () => {
    const { text, rewritten } = addWebpSources('<img srcset="/img/moon.png 1x, /img/moon@2x.png 2x" src="/img/moon.png" alt="">', 'index.html', siblings)
    expect(rewritten).toBe(1)
    expect(text).toContain('<source type="image/webp" srcset="/img/moon.png.webp 1x, /img/moon@2x.png 2x">')
  })

  it('matches root-relative and absolute URLs under any base; ignores data: URLs and unknown files', () => {
    expect(resolveReference('/app/assets/hero-Ab12Cd34.png', 'index.html', siblings)).toBe('assets/hero-Ab12Cd34.png')
    expect(resolveReference('https://cdn.example.com/v1/assets/photo-x.jpg#top', 'index.html', siblings)).toBe('assets/photo-x.jpg')
    expect(resolveReference('./hero-Ab12Cd34.png', 'assets/index.css', siblings)).toBe('assets/hero-Ab12Cd34.png')
    expect(resolveReference('data:image/png;base64,AAAA', 'index.html', siblings)).toBeNull()
    expect(resolveReference('/assets/unknown.png', 'index.html', siblings)).toBeNull()
    expect(webpUrl('/a/b.png?x=1#f')).toBe('/a/b.png.webp?x=1#f')
    expect(addWebpSources('<p>no images</p>', 'index.html', siblings).rewritten).toBe(0)
  })
})

describe('CSS: url() with a WebP sibling gets an image-set() copy', () => {
  it('keeps the declaration and follows it with the image-set() one; the rest is unchanged', () => {
    const before = '/* keep */\n.hero { background: url(\'/assets/hero-Ab12Cd34.png\') center / cover no-repeat; color: red }\n@font-face { src: url(font.woff2) }\n'
    const { text, rewritten } = addImageSets(before, 'assets/index.css', siblings)
    expect(rewritten).toBe(1)
    expect(text).toBe(
      '/* keep */\n.hero { background: url(\'/assets/hero-Ab12Cd34.png\') center / cover no-repeat; ' +
        'background: image-set(url("/assets/hero-Ab12Cd34.png.webp") type("image/webp"), url("/assets/hero-Ab12Cd34.png") type("image/png")) center / cover no-repeat; color: red }\n' +
        '@font-face { src: url(font.woff2) }\n',
    )
    expect(addImageSets(text, 'assets/index.css', siblings)).toEqual({ text, rewritten: 0 })
  })

  it('works on minified CSS, with several url()s and the JPEG type', () => {
    const { text, rewritten } = addImageSets('.a{background-image:url(photo-x.jpg),url(none.png)}', 'assets/index.css', siblings)
    expect(rewritten).toBe(1)
    expect(text).toBe('.a{background-image:url(photo-x.jpg),url(none.png);background-image:image-set(url("photo-x.jpg.webp") type("image/webp"), url("photo-x.jpg") type("image/jpeg")),url(none.png)}')
  })
})

describe('names that follow the bytes', () => {
  it('hashes exactly as Rollup 4 does (its own native hasher), in all three hashCharacters', async () => {
    const require = createRequire(import.meta.url)
    const native = require('rollup/dist/native.js') as Record<'xxhashBase64Url' | 'xxhashBase36' | 'xxhashBase16', (b: Uint8Array) => string>
    for (let i = 0; i < 300; i++) {
      const data = new Uint8Array(Buffer.from(`sample ${i} `.repeat(i % 7)))
      const ours = await bundlerHashes(data)
      expect([ours.base64, ours.base36, ours.hex]).toEqual([native.xxhashBase64Url(data), native.xxhashBase36(data), native.xxhashBase16(data)])
    }
    const png = new Uint8Array(await readFile(new URL('../fixtures/images/horse.png', import.meta.url)))
    expect((await bundlerHashes(png)).base64.slice(0, 8)).toBe('DteauCS5')
  })

  it('renames only a name that holds the hash of the old bytes, with the same length and alphabet', async () => {
    const before = new Uint8Array(Buffer.from('old bytes'))
    const after = new Uint8Array(Buffer.from('new bytes'))
    const [old, next] = [await bundlerHashes(before), await bundlerHashes(after)]
    expect(await followingName(`assets/hero-${old.base64.slice(0, 8)}.png`, before, after)).toBe(`assets/hero-${next.base64.slice(0, 8)}.png`)
    // Only the base name is looked at: a hash in a folder name is left alone.
    expect(await followingName(`img/${old.hex.slice(0, 12)}/hero.png`, before, after)).toBeNull()
    expect(await followingName(`${old.hex.slice(0, 12)}-hero.png`, before, after)).toBe(`${next.hex.slice(0, 12)}-hero.png`)
    expect(await followingName('img/hero.png', before, after)).toBeNull()
    expect(await followingName('assets/hero-Zz9Zz9Zz.png', before, after)).toBeNull()
  })

  it('notes the digests it makes by SHA-256, and takes them from the memo next time without hashing', async () => {
    const before = new Uint8Array(Buffer.from('old bytes'))
    const after = new Uint8Array(Buffer.from('new bytes'))
    const [old, next] = [await bundlerHashes(before), await bundlerHashes(after)]
    const name = `assets/hero-${old.base64.slice(0, 8)}.png`
    const memo = new DigestMemo()
    const known = { memo, before: sha256(before), after: sha256(after) }
    expect(await followingName(name, before, after, known)).toBe(`assets/hero-${next.base64.slice(0, 8)}.png`)
    expect(memo.unsaved()).toEqual(memo.toJSON())
    expect(Object.keys(memo.toJSON())).toHaveLength(2)
    // Written once: nothing new since.
    expect(memo.unsaved()).toBeNull()
    // Read back as the next build does (the cache's note), the digests stand for the bytes: the bytes
    // handed over here are not even looked at.
    const again = new DigestMemo(JSON.parse(JSON.stringify(memo)) as Record<string, unknown>)
    const empty = new Uint8Array(0)
    expect(await followingName(name, empty, empty, { ...known, memo: again })).toBe(`assets/hero-${next.base64.slice(0, 8)}.png`)
    expect(again.unsaved()).toBeNull()
  })

  it('ignores memo entries that are not an algorithm, a SHA-256 and a digest of its length', () => {
    const sha = sha256('x')
    const memo = new DigestMemo({
      [`xxh128:${sha}`]: '00112233445566778899aabbccddeeff',
      [`xxh64:${sha}`]: '00112233445566778899aabbccddeeff',
      [`md5:${sha}`]: '00112233445566778899aabbccddeeff',
      'xxh128:short': '00112233445566778899aabbccddeeff',
      [`xxh128:${sha256('y')}`]: 42,
    })
    expect(Object.keys(memo.toJSON())).toEqual([`xxh128:${sha}`])
    expect(memo.get('xxh64', sha)).toBeNull()
    expect(Buffer.from(memo.get('xxh128', sha)!).toString('hex')).toBe('00112233445566778899aabbccddeeff')
  })

  it('replaces every reference by base name, the .webp sibling with it', () => {
    const renames = new Map([['assets/hero-AAAAAAAA.png', 'assets/hero-BBBBBBBB.png']])
    const { text, replaced } = replaceNames('a("/assets/hero-AAAAAAAA.png");b("./hero-AAAAAAAA.png.webp")', renames)
    expect(text).toBe('a("/assets/hero-BBBBBBBB.png");b("./hero-BBBBBBBB.png.webp")')
    expect(replaced).toBe(2)
  })
})

describe('vite preview: Accept', () => {
  it('reads image/webp with its quality', () => {
    expect(acceptsWebp('image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8')).toBe(true)
    expect(acceptsWebp('image/webp;q=0')).toBe(false)
    expect(acceptsWebp('image/png,*/*')).toBe(false)
    expect(acceptsWebp(undefined)).toBe(false)
  })
})
