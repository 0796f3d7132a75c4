/**
 * Lossy PNG that stays truecolour: round every colour sample to a multiple of `step` (alpha untouched).
 * Fewer distinct values make the PNG filters' residuals repeat, so deflate packs them tighter; unlike a
 * 256-colour palette it never bands a smooth photo into flat patches. Used when no palette passes.
 */
export function posterize(raw: Uint8Array, channels: number, hasAlpha: boolean, step: number): Uint8Array {
  const out = new Uint8Array(raw.length)
  const colour = hasAlpha ? channels - 1 : channels
  const lut = new Uint8Array(256)
  for (let v = 0; v < 256; v++) lut[v] = Math.min(255, Math.round(v / step) * step)
  for (let i = 0; i < raw.length; i += channels) {
    for (let c = 0; c < colour; c++) out[i + c] = lut[raw[i + c]!]!
    if (hasAlpha) out[i + colour] = raw[i + colour]!
  }
  return out
}
