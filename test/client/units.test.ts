/** Pure pieces: result matching, batching, format sniffing, Retry-After parsing. */
import { describe, expect, test } from 'vitest'
import { makeBatches } from '../../src/client/batch.ts'
import { parseRetryAfter } from '../../src/client/http.ts'
import type { UniqueItem } from '../../src/client/inputs.ts'
import { matchResults } from '../../src/client/match.ts'
import { formatFromName, sniffFormat } from '../../src/contract/formats.ts'
import { fixture } from './_fixtures.ts'

const item = (uploadName: string, kind: 'bytes' | 'url' = 'bytes'): UniqueItem => ({
  key: `${kind}:${uploadName}:${Math.random()}`,
  uploadName,
  source: kind === 'url' ? { kind: 'url', url: `https://x.test/${encodeURIComponent(uploadName)}` } : { kind: 'bytes', data: new Uint8Array([1]) },
  format: 'png',
  size: 1,
  hash: null,
  members: [0],
})

describe('matchResults', () => {
  test('in order with matching names', () => {
    const r = [{ file_name: 'a.png', n: 1 }, { file_name: 'b.png', n: 2 }]
    expect(matchResults(['a.png', 'b.png'], r)).toEqual(r)
  })
  test('by URL-decoded name when the order differs', () => {
    const r = [{ file_name: 'b%20c.png', n: 2 }, { file_name: 'a.png', n: 1 }]
    expect(matchResults(['a.png', 'b c.png'], r).map((x) => (x as { n: number }).n)).toEqual([1, 2])
  })
  test('both sides decoded', () => {
    expect(matchResults(['%C3%A9t%C3%A9.png'], [{ file_name: 'été.png', n: 1 }])[0]).toMatchObject({ n: 1 })
  })
  test('by order when the server renamed files but the count agrees', () => {
    const r = [{ file_name: 'x1.png', n: 1 }, { file_name: 'x2.png', n: 2 }]
    expect(matchResults(['a.png', 'b.png'], r)).toEqual(r)
  })
  test('never by order when the names that do match say the server reordered', () => {
    const r = [{ file_name: 'b.png', n: 2 }, { file_name: 'a.png', n: 1 }, { file_name: 'c-1.png', n: 3 }]
    expect(matchResults(['a.png', 'b.png', 'c.png'], r)).toEqual([r[1], r[0], undefined])
  })
  test('missing entries stay unmatched instead of shifting', () => {
    const r = [{ file_name: 'b.png', n: 2 }]
    expect(matchResults(['a.png', 'b.png'], r)).toEqual([undefined, { file_name: 'b.png', n: 2 }])
  })
  test('a malformed percent sequence is compared as is', () => {
    expect(matchResults(['100%.png', 'z.png'], [{ file_name: 'z.png' }, { file_name: '100%.png', n: 1 }])[0]).toMatchObject({ n: 1 })
  })
})

describe('makeBatches', () => {
  test('at most `size` per batch, order kept, files and URLs apart', () => {
    const items = [...'abcdefg'].map((c) => item(`${c}.png`)).concat([item('u1.png', 'url'), item('u2.png', 'url')])
    const batches = makeBatches(items, 5)
    expect(batches.map((b) => [b.kind, b.items.map((i) => i.uploadName)])).toEqual([
      ['file', ['a.png', 'b.png', 'c.png', 'd.png', 'e.png']],
      ['file', ['f.png', 'g.png']],
      ['url', ['u1.png', 'u2.png']],
    ])
  })
  test('equal names (after decoding) never share a batch', () => {
    const batches = makeBatches([item('a.png'), item('a.png'), item('a%2Epng'), item('b.png')], 5)
    for (const b of batches) {
      const names = b.items.map((i) => decodeURIComponent(i.uploadName))
      expect(new Set(names).size).toBe(names.length)
    }
    expect(batches.flatMap((b) => b.items)).toHaveLength(4)
  })
})

describe('sniffFormat', () => {
  test('real files', () => {
    expect(sniffFormat(fixture('horse.png'))).toBe('png')
    expect(sniffFormat(fixture('rocket.jpg'))).toBe('jpeg')
    expect(sniffFormat(fixture('no_time_for_that_tiny.gif'))).toBe('gif')
    expect(sniffFormat(new TextEncoder().encode('<html>error</html>'))).toBeNull()
    expect(sniffFormat(new Uint8Array())).toBeNull()
  })
  test('names', () => {
    expect(formatFromName('a/b.JPEG')).toBe('jpeg')
    expect(formatFromName('x.webp')).toBe('webp')
    expect(formatFromName('noext')).toBeNull()
  })
})

describe('parseRetryAfter', () => {
  test('seconds, dates, garbage', () => {
    expect(parseRetryAfter('3')).toBe(3000)
    expect(parseRetryAfter('0.25')).toBe(250)
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000)
    expect(parseRetryAfter('soon')).toBeUndefined()
    expect(parseRetryAfter(undefined)).toBeUndefined()
    expect(parseRetryAfter(['2', '5'])).toBe(2000)
  })
})
