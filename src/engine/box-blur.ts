/**
 * Separable box blur with running sums; edges average over the pixels that exist.
 *
 * It runs as a stream of rows: a row is blurred horizontally as soon as it is produced, and the vertical
 * pass keeps one running sum per column, so only a few rows are held and memory is walked in order (a
 * column pass with stride = width missed the cache on every read, and the two full-size temporaries
 * cost allocation and GC). The sums add and drop the same values in the same order as a plain two-pass
 * blur in float64, and every stored value is rounded to float32 at the same points, so the result is the
 * same to the bit.
 */
export class RowBlur {
  /** The last row returned by `take`. */
  readonly out: Float32Array
  private readonly ring: Float32Array
  private readonly slots: number
  private readonly sums: Float64Array
  private count = 0

  /**
   * @param lookahead how far ahead of `take(y)` rows are `put` (at least `radius + 1`), so that blurs of
   * different radii can be fed from the same rows.
   */
  constructor(
    readonly width: number,
    readonly height: number,
    readonly radius: number,
    lookahead = Math.max(0, radius) + 1,
  ) {
    this.slots = Math.max(0, radius) + lookahead + 1
    this.ring = new Float32Array(this.slots * width)
    this.sums = new Float64Array(radius > 0 ? width : 0)
    this.out = new Float32Array(width)
  }

  /** Row `y` of the source (rows come in order); it is blurred horizontally into the ring at once. */
  put(y: number, row: Float32Array): void {
    const at = (y % this.slots) * this.width
    if (this.radius <= 0) this.ring.set(row.subarray(0, this.width), at)
    else blurRow(row, this.ring, at, this.width, this.radius)
  }

  /** Row `y` of the result (rows in order from 0); rows up to `min(height - 1, y + radius + 1)` must be in. */
  take(y: number): Float32Array {
    const { width: w, radius: r, ring, sums, out } = this
    if (r <= 0) {
      const at = (y % this.slots) * w
      out.set(ring.subarray(at, at + w))
      return out
    }
    if (y === 0) {
      sums.fill(0)
      const end = Math.min(r, this.height - 1)
      for (let k = 0; k <= end; k++) {
        const at = (k % this.slots) * w
        for (let x = 0; x < w; x++) sums[x] = sums[x]! + ring[at + x]!
      }
      this.count = end + 1
    }
    const count = this.count
    const add = y + r + 1 < this.height ? ((y + r + 1) % this.slots) * w : -1
    const drop = y - r >= 0 ? ((y - r) % this.slots) * w : -1
    // One loop per case (a row entering, leaving, both or neither) rather than one loop testing per pixel:
    // this runs for every pixel of every metric measurement.
    if (add >= 0 && drop >= 0) {
      for (let x = 0; x < w; x++) {
        const s = sums[x]!
        out[x] = s / count
        sums[x] = s + ring[add + x]! - ring[drop + x]!
      }
    } else if (add >= 0) {
      for (let x = 0; x < w; x++) {
        const s = sums[x]!
        out[x] = s / count
        sums[x] = s + ring[add + x]!
      }
      this.count++
    } else if (drop >= 0) {
      for (let x = 0; x < w; x++) {
        const s = sums[x]!
        out[x] = s / count
        sums[x] = s - ring[drop + x]!
      }
      this.count--
    } else {
      for (let x = 0; x < w; x++) out[x] = sums[x]! / count
    }
    return out
  }
}

/** One row's horizontal pass: `src[0..length)` into `dst[at..at + length)`. */
function blurRow(src: Float32Array, dst: Float32Array, at: number, length: number, r: number): void {
  let sum = 0
  let count = 0
  const end = Math.min(r, length - 1)
  for (let k = 0; k <= end; k++) {
    sum += src[k]!
    count++
  }
  // In the middle a value enters and one leaves at every step: no bounds to test, the count is constant.
  const midStart = Math.min(r, length)
  const midEnd = Math.max(midStart, length - r - 1)
  let k = 0
  for (; k < midStart; k++) {
    dst[at + k] = sum / count
    if (k + r + 1 < length) {
      sum += src[k + r + 1]!
      count++
    }
    if (k - r >= 0) {
      sum -= src[k - r]!
      count--
    }
  }
  for (; k < midEnd; k++) {
    dst[at + k] = sum / count
    sum += src[k + r + 1]!
    sum -= src[k - r]!
  }
  for (; k < length; k++) {
    dst[at + k] = sum / count
    if (k + r + 1 < length) {
      sum += src[k + r + 1]!
      count++
    }
    if (k - r >= 0) {
      sum -= src[k - r]!
      count--
    }
  }
}

/** The whole-plane blur, `radius` ≤ 0 being a copy. */
export function boxBlur(src: Float32Array, width: number, height: number, radius: number): Float32Array {
  const out = new Float32Array(src.length)
  if (radius <= 0) {
    out.set(src)
    return out
  }
  const blur = new RowBlur(width, height, radius)
  let put = 0
  for (let y = 0; y < height; y++) {
    for (const need = Math.min(height - 1, y + radius + 1); put <= need; put++) blur.put(put, src.subarray(put * width, put * width + width))
    out.set(blur.take(y), y * width)
  }
  return out
}
