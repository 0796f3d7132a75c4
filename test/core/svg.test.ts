import { describe, expect, it } from 'vitest'
import { optimizeSvg } from '../../src/core/svg.ts'

const svg = `<?xml version="1.0" encoding="UTF-8"?>
<!-- Generator: a very verbose editor -->
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="120" height="60" viewBox="0 0 120 60">
  <metadata>lots of editor metadata</metadata>
  <defs>
    <linearGradient id="brandGradient" x1="0" y1="0" x2="1" y2="0">
      <stop offset="0%" stop-color="#ff0000"/>
      <stop offset="100%" stop-color="#0000ff"/>
    </linearGradient>
  </defs>
  <g id="logo-mark">
    <rect id="unusedButStyled" x="0.000000" y="0.000000" width="120.000000" height="60.000000" fill="url(#brandGradient)"/>
    <circle cx="30.00000" cy="30.00000" r="20.00000" fill="#FFFFFF"/>
  </g>
</svg>
`

describe('optimizeSvg', () => {
  it('shrinks an SVG and keeps its viewBox and every id', async () => {
    const out = await optimizeSvg(new TextEncoder().encode(svg))
    expect(out).not.toBeNull()
    const text = new TextDecoder().decode(out!)
    expect(out!.byteLength).toBeLessThan(svg.length)
    expect(text).toContain('viewBox="0 0 120 60"')
    for (const id of ['brandGradient', 'logo-mark', 'unusedButStyled']) expect(text).toContain(`id="${id}"`)
    expect(text).not.toContain('metadata')
    expect(text).not.toContain('Generator')
  })

  it('returns null when nothing can be gained', async () => {
    const minimal = await optimizeSvg(new TextEncoder().encode(svg))
    expect(await optimizeSvg(minimal!)).toBeNull()
  })

  it('throws on markup it cannot parse, for the pipeline to keep the original', async () => {
    await expect(optimizeSvg(new TextEncoder().encode('<svg><g></svg'))).rejects.toThrow()
  })
})
