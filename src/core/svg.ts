/**
 * SVGs never go to the API (it does not take them): svgo runs locally with a preset that keeps the
 * `viewBox` (so the image still scales) and IDs (CSS, `<use href="#...">` and scripts may point at them).
 */
import type { Config } from 'svgo'

/** Part of the cache key: bump it whenever the configuration below changes the output. */
export const SVG_PRESET_ID = 'svgo4-default-keep-viewbox-ids-v1'

const config: Config = {
  multipass: true,
  plugins: [
    // svgo 4 already leaves removeViewBox (and removeTitle) out of preset-default; cleanupIds is in it.
    { name: 'preset-default', params: { overrides: { cleanupIds: false } } },
  ],
}

/** The optimized SVG, or null when svgo cannot gain anything. Throws on markup svgo cannot parse. */
export async function optimizeSvg(data: Uint8Array): Promise<Uint8Array | null> {
  const { optimize } = await import('svgo')
  const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')
  const { data: output } = optimize(input, config)
  const bytes = new Uint8Array(Buffer.from(output, 'utf8'))
  return bytes.byteLength < data.byteLength ? bytes : null
}
