import { describe, expect, it } from 'vitest'
import { kindFromName as kindOf } from '../../src/contract/formats.ts'
import { createFilter, normalizeFileName } from '../../src/core/filter.ts'
import { resolveOptions } from '../../src/core/options.ts'

describe('filter', () => {
  it('takes every supported image format by default, whatever the case, and nothing else', () => {
    const wants = createFilter(resolveOptions({}))
    for (const name of ['a.jpg', 'assets/b-3fa1.JPEG', 'c.png', 'd.gif', 'e.webp', 'icons/f.svg', 'deep/dir/.hidden.png']) {
      expect(wants(name), name).toBe(true)
    }
    for (const name of ['index.js', 'style.css', 'a.png.map', 'font.woff2', 'img.avif', 'noext']) {
      expect(wants(name), name).toBe(false)
    }
  })

  it('applies include and exclude globs (exclude wins) on forward-slash relative paths', () => {
    const wants = createFilter(resolveOptions({ include: ['assets/**'], exclude: ['**/*.gif', 'assets/keep/**'] }))
    expect(wants('assets/a.png')).toBe(true)
    expect(wants('assets\\b.jpg')).toBe(true)
    expect(wants('./assets/c.webp')).toBe(true)
    expect(wants('assets/anim.gif')).toBe(false)
    expect(wants('assets/keep/x.png')).toBe(false)
    expect(wants('other/a.png')).toBe(false)
    // include cannot widen the set of formats the pipeline knows.
    expect(wants('assets/app.js')).toBe(false)
  })

  it('names kinds and normalizes names', () => {
    expect(kindOf('x.JPG')).toBe('jpeg')
    expect(kindOf('x.svg')).toBe('svg')
    expect(kindOf('x.tiff')).toBeNull()
    expect(normalizeFileName('/a\\b/c.png')).toBe('a/b/c.png')
  })
})
