import type { Raster } from './raster.ts'

/**
 * The quality search runs on a mosaic of full-resolution tiles instead of the whole image, then the
 * engine makes one full-size encode and checks it. Tiles, not a downscaled proxy: JPEG blocking, ringing
 * and colour bleeding happen at the pixel scale, and a downscale hides them.
 *
 * A cell is 144 px (nine 16 px JPEG MCUs / WebP macroblocks) and starts on a multiple of 144 in the image,
 * so a tile is cut into the same blocks in the mosaic as in the full encode, and its pixels encode (almost)
 * the same way. Only the inner 128 px are measured: the 8 px margin holds the seam between two tiles,
 * where decoders smooth chroma across the neighbour (see `seamMask`).
 */
export const CELL = 144
export const MARGIN = 8
/** Tiles cover about this share of the image, within [MIN_TILES, MAX_TILES]. */
const COVER = 0.12
const MIN_TILES = 8
const MAX_TILES = 24
/** Below this many times the mosaic's size, the image itself is searched (tiles would save little). */
const WORTH_IT = 4

export interface TilePlan {
  /** Top-left corners in the image, in pixels (multiples of CELL). */
  cells: { x: number; y: number }[]
  columns: number
  width: number
  height: number
}

/** The tiles to search on, or null when the image is small enough to search whole. */
export function planTiles(r: Raster): TilePlan | null {
  const gridW = Math.floor(r.width / CELL)
  const gridH = Math.floor(r.height / CELL)
  const wanted = Math.min(MAX_TILES, Math.max(MIN_TILES, Math.round((COVER * r.width * r.height) / (CELL * CELL))))
  if (gridW * gridH < wanted || r.width * r.height < WORTH_IT * wanted * CELL * CELL) return null
  const stats: { i: number; ringing: number; bleeding: number; smooth: number }[] = []
  for (let gy = 0; gy < gridH; gy++) for (let gx = 0; gx < gridW; gx++) stats.push({ i: gy * gridW + gx, ...cellStats(r, gx * CELL, gy * CELL) })
  // Where a lossy encoder shows first, in equal shares: a strong edge beside a flat area (ringing, which
  // texture would mask), a saturated colour edge beside a flat area (chroma bleeding), a smooth gradient
  // (blocking, banding); the rest spread evenly over the image for coverage.
  const picked = new Set<number>()
  const share = Math.max(1, Math.floor(wanted / 4))
  const take = (sorted: typeof stats): void => {
    let n = 0
    for (const s of sorted) {
      if (n >= share || picked.size >= wanted) return
      if (!picked.has(s.i)) {
        picked.add(s.i)
        n++
      }
    }
  }
  take(stats.filter((s) => s.ringing > 0).sort((a, b) => b.ringing - a.ringing))
  take(stats.filter((s) => s.bleeding > 0).sort((a, b) => b.bleeding - a.bleeding))
  take(stats.filter((s) => s.smooth > 0).sort((a, b) => b.smooth - a.smooth))
  const stride = stats.length / (wanted - picked.size + 1)
  for (let k = 1; picked.size < wanted && k * stride < stats.length; k++) picked.add(stats[Math.floor(k * stride)]!.i)
  for (let i = 0; picked.size < wanted && i < stats.length; i++) picked.add(i)
  const cells = [...picked].sort((a, b) => a - b).map((i) => ({ x: (i % gridW) * CELL, y: Math.floor(i / gridW) * CELL }))
  const columns = mosaicColumns(cells.length)
  return { cells, columns, width: columns * CELL, height: Math.ceil(cells.length / columns) * CELL }
}

/**
 * Columns for `n` cells: the fewest empty slots, about twice as wide as high. An empty slot is black
 * pixels that every probe still encodes, decodes and runs the metric over: 24 cells in 7 columns left 4 of
 * 28 slots empty, 6 columns leave none (the large app's 79 images: the same outputs, 0.6 s less CPU).
 */
function mosaicColumns(n: number): number {
  let best = Math.ceil(Math.sqrt(n * 2))
  let bestEmpty = best * Math.ceil(n / best) - n
  for (let c = Math.ceil(Math.sqrt(n)); c <= best + 2 && bestEmpty > 0; c++) {
    const empty = c * Math.ceil(n / c) - n
    if (empty < bestEmpty) {
      best = c
      bestEmpty = empty
    }
  }
  return best
}

/**
 * Cheap statistics on a 4-pixel lattice: the strongest luma and chroma steps, weighted by the share of
 * flat samples around them, and how much of a smooth gradient the cell holds (luma range with little
 * local detail: where blocks and bands show). Exported for its test.
 */
export function cellStats(r: Raster, x0: number, y0: number): { ringing: number; bleeding: number; smooth: number } {
  const c = r.channels
  const colour = c >= 3
  let detail = 0
  let flat = 0
  let maxStep = 0
  let maxChroma = 0
  let n = 0
  let min = 255
  let max = 0
  for (let y = y0; y < y0 + CELL - 4; y += 4) {
    for (let x = x0; x < x0 + CELL - 4; x += 4) {
      const i = (y * r.width + x) * c
      const right = i + 4 * c
      const down = i + 4 * r.width * c
      const l = luma(r.data, i, colour)
      const lRight = luma(r.data, right, colour)
      const lDown = luma(r.data, down, colour)
      const step = Math.abs(lRight - l) + Math.abs(lDown - l)
      detail += step
      if (step < 2) flat++
      if (step > maxStep) maxStep = step
      if (colour) {
        const cs = chromaStep(r.data, i, l, right, lRight) + chromaStep(r.data, i, l, down, lDown)
        if (cs > maxChroma) maxChroma = cs
      }
      if (l < min) min = l
      if (l > max) max = l
      n++
    }
  }
  detail /= n
  const flatShare = flat / n
  return {
    ringing: maxStep * flatShare,
    bleeding: maxChroma * flatShare,
    smooth: detail < 1.5 ? (max - min) / (0.5 + detail) : 0,
  }
}

function luma(d: Uint8Array, i: number, colour: boolean): number {
  return colour ? 0.299 * d[i]! + 0.587 * d[i + 1]! + 0.114 * d[i + 2]! : d[i]!
}

/** The change of (B − luma, R − luma) between samples i and j, given their lumas. */
function chromaStep(d: Uint8Array, i: number, li: number, j: number, lj: number): number {
  return Math.abs(d[i + 2]! - li - (d[j + 2]! - lj)) + Math.abs(d[i]! - li - (d[j]! - lj))
}

/** The plan's cells cut from a raster of the image's size, side by side. */
export function mosaic(r: Raster, plan: TilePlan): Raster {
  const c = r.channels
  const out = new Uint8Array(plan.width * plan.height * c)
  plan.cells.forEach((cell, k) => {
    const ox = (k % plan.columns) * CELL
    const oy = Math.floor(k / plan.columns) * CELL
    for (let y = 0; y < CELL; y++) {
      const from = ((cell.y + y) * r.width + cell.x) * c
      out.set(r.data.subarray(from, from + CELL * c), ((oy + y) * plan.width + ox) * c)
    }
  })
  return { data: out, width: plan.width, height: plan.height, channels: c }
}

/** 1 where the metric may look (a tile's inner 128 px), 0 on the seams and the mosaic's empty slots. */
export function seamMask(plan: TilePlan): Uint8Array {
  const mask = new Uint8Array(plan.width * plan.height)
  plan.cells.forEach((_cell, k) => {
    const ox = (k % plan.columns) * CELL
    const oy = Math.floor(k / plan.columns) * CELL
    for (let y = MARGIN; y < CELL - MARGIN; y++) mask.fill(1, (oy + y) * plan.width + ox + MARGIN, (oy + y) * plan.width + ox + CELL - MARGIN)
  })
  return mask
}
