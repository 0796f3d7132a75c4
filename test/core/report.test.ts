import { describe, expect, it } from 'vitest'
import { formatFailures, formatTable, levelled, Progress, summarize, type FileReport } from '../../src/core/report.ts'

const row = (file: string, originalSize: number, optimizedSize: number, extra: Partial<FileReport> = {}): FileReport => ({
  file,
  originalSize,
  optimizedSize,
  cached: false,
  webpSize: null,
  error: null,
  note: null,
  ...extra,
})

describe('report', () => {
  const files = [
    row('b/hero.png', 10_000, 4_000, { webpSize: 3_000 }),
    row('a/icon.svg', 1_000, 500, { cached: true }),
    row('c/broken.jpg', 400, 400, { error: 'truncated: the JPEG ends before its end-of-image marker' }),
    row('d/logo.png', 2_000, 2_000, { error: 'POST /optimize was refused: not enough tokens' }),
    row('e/photo.jpg', 3_000, 3_000, { error: 'POST /optimize was refused: not enough tokens' }),
  ]

  it('sorts by name ignoring case, then by code unit, whatever the locale', () => {
    const names = ['b/Hero.png', 'a/icon.svg', 'B/hero.png', 'a_b.png', 'a-b.png', 'A/icon.svg']
    const report = summarize('embedded', names.map((name) => row(name, 1, 1)), { requests: 0, tokensUsed: 0, tokensLeft: null })
    // ICU's collation (localeCompare) gives a_b, a-b, a/icon, A/icon, b/Hero, B/hero.
    expect(report.files.map((f) => f.file)).toEqual(['a-b.png', 'A/icon.svg', 'a/icon.svg', 'a_b.png', 'B/hero.png', 'b/Hero.png'])
  })

  it('adds up the totals and sorts the files', () => {
    const report = summarize('embedded', files, { requests: 3, tokensUsed: 1, tokensLeft: -1 })
    expect(report.files.map((f) => f.file)).toEqual(['a/icon.svg', 'b/hero.png', 'c/broken.jpg', 'd/logo.png', 'e/photo.jpg'])
    expect(report.totals).toEqual({
      files: 5,
      originalBytes: 16_400,
      optimizedBytes: 9_900,
      savedBytes: 6_500,
      webpFiles: 1,
      cacheHits: 1,
      requests: 3,
      tokensUsed: 1,
      tokensLeft: -1,
      errors: 3,
    })
  })

  it('prints one table with every column and the totals', () => {
    const table = formatTable(summarize('hosted', files, { requests: 3, tokensUsed: 1, tokensLeft: 42 }), { sent: 2, uploads: 1, polls: 2, tokensLeft: 42 })
    const lines = table.split('\n')
    expect(lines[0]).toMatch(/^file\s+before\s+after\s+saved\s+webp\s+source$/)
    expect(lines.find((l) => l.startsWith('b/hero.png'))).toMatch(/9\.8 KiB\s+3\.9 KiB\s+60\.0%\s+2\.9 KiB\s+fresh$/)
    expect(lines.find((l) => l.startsWith('a/icon.svg'))).toMatch(/cached$/)
    expect(lines.find((l) => l.startsWith('c/broken.jpg'))).toMatch(/kept\s+-\s+failed$/)
    expect(lines.at(-3)).toBe('5 images: 16.0 KiB -> 9.7 KiB, saved 6.3 KiB (39.6%), 1 WebP sibling; 3 kept their original bytes')
    // Where the requests and the tokens went, in words: batches of up to 5, result checks, what costs a token.
    expect(lines.at(-2)).toBe('1 cache hit, 2 images sent to the API (hosted) in 3 requests: 1 upload of up to 5 images, 2 result checks')
    expect(lines.at(-1)).toBe('1 token used (one per optimized image; cache hits and images without gain cost none), tokens left: 42')
  })

  it('says "unlimited" for the API\'s -1, and a build that asked nothing says so', () => {
    const table = formatTable(summarize('embedded', [files[1]!], { requests: 0, tokensUsed: 0, tokensLeft: -1 }), { sent: 0, uploads: 0, polls: 0, tokensLeft: -1 })
    expect(table).toMatch(/1 cache hit, no API request \(embedded\)\n0 tokens used .*tokens left: unlimited$/)
  })

  it('groups failures by reason, naming every file', () => {
    const text = formatFailures(summarize('hosted', files, { requests: 0, tokensUsed: 0, tokensLeft: null }))!
    expect(text.split('\n')).toEqual([
      '3 of 5 images kept their original bytes:',
      '  c/broken.jpg: truncated: the JPEG ends before its end-of-image marker',
      '  d/logo.png, e/photo.jpg: POST /optimize was refused: not enough tokens',
    ])
    expect(formatFailures(summarize('hosted', [files[0]!], { requests: 0, tokensUsed: 0, tokensLeft: null }))).toBeNull()
  })

  it('prefixes every line and honours logLevel', () => {
    const seen: string[] = []
    const sink = { info: (m: string) => void seen.push(`info:${m}`), warn: (m: string) => void seen.push(`warn:${m}`) }
    levelled(sink, 'info').info('a\nb')
    levelled(sink, 'warn').info('hidden')
    levelled(sink, 'warn').warn('shown')
    levelled(sink, 'silent').warn('hidden')
    expect(seen).toEqual(['info:[megaoptim] a\n[megaoptim] b', 'warn:[megaoptim] shown'])
  })

  it('draws the progress line only on a TTY outside CI, and clears it', () => {
    const writes: string[] = []
    const tty = { isTTY: true, columns: 0, write: (s: string) => void writes.push(s) } as unknown as NodeJS.WriteStream
    const progress = new Progress(true, tty, {})
    progress.update(1, 3, 'hero.png optimized')
    progress.clear()
    progress.clear()
    expect(writes).toEqual(['\r\x1b[2K[megaoptim] 1/3 hero.png optimized', '\r\x1b[2K'])
    const quiet: string[] = []
    const pipe = { isTTY: false, write: (s: string) => void quiet.push(s) } as unknown as NodeJS.WriteStream
    new Progress(true, pipe, {}).update(1, 1, 'x')
    new Progress(true, tty, { CI: 'true' }).update(1, 1, 'x')
    expect(quiet).toEqual([])
    expect(writes).toHaveLength(2)
  })
})
