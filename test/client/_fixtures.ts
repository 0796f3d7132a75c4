import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const FIXTURES = fileURLToPath(new URL('../fixtures/images/', import.meta.url))

export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(`${FIXTURES}${name}`))
}

/** `n` different PNGs: a real PNG with a few distinct bytes appended after IEND (so the bytes differ). */
export function distinctPngs(n: number, base = 'palette_color.png'): Array<{ name: string; data: Uint8Array }> {
  const png = fixture(base)
  return Array.from({ length: n }, (_, i) => {
    const data = new Uint8Array(png.length + 4)
    data.set(png)
    new DataView(data.buffer).setUint32(png.length, i)
    return { name: `img-${i}.png`, data }
  })
}
