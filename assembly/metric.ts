// The metric's per-measurement core (src/engine/metric.ts, `distanceSteps`) in AssemblyScript, compiled
// by `npm run build:wasm` into src/engine/metric-core-binary.ts (loaded by src/engine/metric-core.ts).
// The same arithmetic in the same order: float64 expressions stored as float32 where the TypeScript
// stores them in a Float32Array, so the distance is the same to the bit (test/engine/metric-core.test.ts). On top, a candidate is read as 8-bit sRGB and
// turned into CIELAB here, as libvips does it (its tables, its float32 steps), instead of libvips writing
// 12 bytes per pixel for the JavaScript to read back.
//
// One instance measures against one reference view: `setup` lays out every buffer once, the caller fills
// the tables and the reference, then calls `distance` per candidate. Memory only grows in `setup`.

/** Entries in libvips' XYZ → Lab cube-root table (colour/XYZ2Lab.c). */
const QUANT: i32 = 100000
/** The top quantile's histogram bins (`topQuantile` in metric.ts). */
const BINS: i32 = 4096

let width: i32 = 0
let height: i32 = 0
let errRadius: i32 = 0
let colourRadius: i32 = 0
let activityRadius: i32 = 0
let lookahead: i32 = 0

// Buffers (byte offsets into memory).
// The tables, filled by the caller (metric-core.ts builds them once per thread):
let tXyz: usize = 0 // v128[3][256]: (X, Y, Z, 0) that each channel's byte adds
let tCbrt: usize = 0 // f32[QUANT]
let tStep: usize = 0 // f32[QUANT]: tCbrt[i + 1] - tCbrt[i], the interpolation's slope
let refL: usize = 0
let refA: usize = 0
let refB: usize = 0
let activity: usize = 0
let mask: usize = 0
let scores: usize = 0
let cand: usize = 0 // u8, up to 4 channels per pixel
let candLab: usize = 0 // f32[3 * width]: one row
let zeroRow: usize = 0 // f32[width] of zeros: the row a blur adds or drops where there is none
let errRow: usize = 0
let colourRow: usize = 0
let errRing: usize = 0
let colourRing: usize = 0
let activityRing: usize = 0
let errSums: usize = 0 // f64[width]
let colourSums: usize = 0
let errOut: usize = 0
let colourOut: usize = 0
let hist: usize = 0 // u32[BINS]
let errSlots: i32 = 0
let colourSlots: i32 = 0
let activitySlots: i32 = 0
let errCount: i32 = 0
let colourCount: i32 = 0

let top: usize = 0

function take(bytes: usize): usize {
  const at = (top + 15) & ~(15 as usize)
  top = at + bytes
  return at
}

/**
 * Lays out the buffers for a `w`×`h` reference; returns where a list of the first ten buffers' offsets
 * starts (read in this order by `CoreView.create` in metric-core.ts), or 0 when memory cannot grow.
 */
export function setup(w: i32, h: i32, errorRadius: i32, chromaRadius: i32, maskRadius: i32): usize {
  width = w
  height = h
  errRadius = errorRadius
  colourRadius = chromaRadius
  activityRadius = maskRadius
  activitySlots = 2 * max(0, maskRadius) + 2
  lookahead = max(max(0, errorRadius), chromaRadius) + 1
  errSlots = max(0, errorRadius) + lookahead + 1
  colourSlots = max(0, chromaRadius) + lookahead + 1
  const n = <usize>w * <usize>h
  top = __heap_base
  const layout = take(16 * 4)
  tXyz = take(3 * 256 * 16)
  tCbrt = take(<usize>QUANT * 4)
  tStep = take(<usize>QUANT * 4)
  refL = take(n * 4)
  refA = take(n * 4)
  refB = take(n * 4)
  activity = take(n * 4)
  mask = take(n)
  scores = take(n * 4)
  cand = take(n * 4)
  candLab = take(<usize>w * 12 + 16) // + the spare lanes of the last pixels' vector loads and stores
  zeroRow = take(<usize>w * 4)
  errRow = take(<usize>w * 4)
  colourRow = take(<usize>w * 4)
  errRing = take(<usize>errSlots * <usize>w * 4)
  colourRing = take(<usize>colourSlots * <usize>w * 4)
  activityRing = take(<usize>activitySlots * <usize>w * 4)
  errSums = take(<usize>w * 8)
  colourSums = take(<usize>w * 8)
  errOut = take(<usize>w * 4)
  colourOut = take(<usize>w * 4)
  hist = take(<usize>BINS * 4)
  const pages = <i32>((top + 0xffff) >> 16) - memory.size()
  if (pages > 0 && memory.grow(pages) < 0) return 0
  store<u32>(layout, <u32>tXyz)
  store<u32>(layout + 4, <u32>tCbrt)
  store<u32>(layout + 8, <u32>tStep)
  store<u32>(layout + 12, <u32>refL)
  store<u32>(layout + 16, <u32>refA)
  store<u32>(layout + 20, <u32>refB)
  store<u32>(layout + 24, <u32>activity)
  store<u32>(layout + 28, <u32>mask)
  store<u32>(layout + 32, <u32>scores)
  store<u32>(layout + 36, <u32>cand)
  return layout
}

/**
 * sRGB bytes (`channels` apart) of `count` pixels from `src` to CIELAB, interleaved, at `dst`, as libvips
 * computes it (colour/sRGB2scRGB.c, scRGB2XYZ.c, XYZ2Lab.c): X, Y and Z side by side in one vector, each
 * lane the same float operations as libvips' scalar code. libvips divides by the white point in double;
 * multiplying by its reciprocal gives the same float on every 8-bit sRGB colour (all 2^24 are checked in
 * test/engine/metric-core.test.ts). A pixel equal to the one before it (runs: flat art, screenshots, a
 * palette's output) copies its Lab instead.
 */
function toLab(src: usize, channels: i32, count: i32, dst: usize): void {
  const quant = f32x4.splat(<f32>QUANT)
  const perWhiteXY = f64x2(1.0 / 95.047, 1.0 / 100.0)
  const perWhiteZ = f64x2(1.0 / 108.8827, 0)
  const low = i32x4.splat(0)
  const high = i32x4.splat(QUANT - 2)
  const scale = f32x4(116, 500, 200, 0)
  const offset = f32x4(-16, 0, 0, 0)
  const zero = f32x4.splat(0)
  let last: i32 = -1
  let lab = zero
  for (let x = 0; x < count; x++) {
    const p = src + <usize>(x * channels)
    const r = <i32>load<u8>(p)
    const g = <i32>load<u8>(p, 1)
    const b = <i32>load<u8>(p, 2)
    const key = r | (g << 8) | (b << 16)
    if (key !== last) {
      last = key
      const xyz = f32x4.add(
        f32x4.add(v128.load(tXyz + (<usize>r << 4)), v128.load(tXyz + 4096 + (<usize>g << 4))),
        v128.load(tXyz + 8192 + (<usize>b << 4)),
      )
      const scaled = f32x4.mul(quant, xyz)
      const xy = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.promote_low_f32x4(scaled), perWhiteXY))
      const z = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.promote_low_f32x4(v128.shuffle<f32>(scaled, scaled, 2, 3, 0, 1)), perWhiteZ))
      const nq = v128.shuffle<f32>(xy, z, 0, 1, 4, 5)
      const i = i32x4.min_s(i32x4.max_s(i32x4.trunc_sat_f32x4_s(nq), low), high)
      const fraction = f32x4.sub(nq, f32x4.convert_i32x4_s(i))
      const ix = <usize>i32x4.extract_lane(i, 0) << 2
      const iy = <usize>i32x4.extract_lane(i, 1) << 2
      const iz = <usize>i32x4.extract_lane(i, 2) << 2
      const base = f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(load<f32>(tCbrt + ix)), 1, load<f32>(tCbrt + iy)), 2, load<f32>(tCbrt + iz))
      const step = f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(load<f32>(tStep + ix)), 1, load<f32>(tStep + iy)), 2, load<f32>(tStep + iz))
      const f = f32x4.add(base, f32x4.mul(fraction, step))
      // (116·fy − 16, 500·(fx − fy), 200·(fy − fz)): (fy, fx, fy) − (0, fy, fz), scaled, offset.
      const minuend = v128.shuffle<f32>(f, f, 1, 0, 1, 3)
      const subtrahend = v128.shuffle<f32>(zero, f, 0, 5, 6, 0)
      lab = f32x4.add(f32x4.mul(scale, f32x4.sub(minuend, subtrahend)), offset)
    }
    v128.store(dst + <usize>(x * 12), lab)
  }
}

/** The reference's Lab planes from its sRGB bytes, already at `cand`. */
export function referenceLab(channels: i32): void {
  const w = width
  for (let y = 0; y < height; y++) {
    const start = <usize>y * <usize>w
    toLab(cand + start * <usize>channels, channels, w, candLab)
    for (let x = 0; x < w; x++) {
      const q = candLab + <usize>(x * 12)
      const i = (start + <usize>x) << 2
      store<f32>(refL + i, load<f32>(q))
      store<f32>(refA + i, load<f32>(q, 4))
      store<f32>(refB + i, load<f32>(q, 8))
    }
  }
}

/**
 * The reference's activity (`activityMap` in metric.ts): the local mean absolute deviation of L* around
 * its local mean, both box blurs of `maskRadius` (`boxBlur`: each row is put `radius + 1` ahead). The
 * deviations go through `scores`, which every measurement overwrites.
 */
export function referenceActivity(): void {
  const w = width
  const h = height
  const r = activityRadius
  blurPlane(refL, scores, r)
  for (let i: usize = 0, n = <usize>w * <usize>h; i < n; i++) {
    const at = i << 2
    store<f32>(scores + at, <f32>Math.abs(<f64>load<f32>(refL + at) - <f64>load<f32>(scores + at)))
  }
  blurPlane(scores, activity, r)
}

/** `boxBlur` (box-blur.ts) of the plane at `src` into `dst`. */
function blurPlane(src: usize, dst: usize, r: i32): void {
  const w = width
  const h = height
  const rowBytes = <usize>w * 4
  if (r <= 0) {
    memory.copy(dst, src, rowBytes * <usize>h)
    return
  }
  let putRow = 0
  let count = 0
  for (let y = 0; y < h; y++) {
    for (const need = min(h - 1, y + r + 1); putRow <= need; putRow++) put(activityRing, activitySlots, r, putRow, src + <usize>putRow * rowBytes)
    count = takeRow(activityRing, activitySlots, r, errSums, dst + <usize>y * rowBytes, y, count)
  }
}

/** One row's horizontal box blur, from `src` into `dst` (as `blurRow` in box-blur.ts). */
function blurRow(src: usize, dst: usize, length: i32, r: i32): void {
  let sum: f64 = 0
  let count: i32 = 0
  const end = min(r, length - 1)
  for (let k = 0; k <= end; k++) {
    sum += <f64>load<f32>(src + (<usize>k << 2))
    count++
  }
  const midStart = min(r, length)
  const midEnd = max(midStart, length - r - 1)
  for (let k = 0; k < length; k++) {
    if (k === midStart) {
      // In the middle a value enters and one leaves at every step: no bounds to test, the count is constant.
      for (; k < midEnd; k++) {
        store<f32>(dst + (<usize>k << 2), <f32>(sum / <f64>count))
        sum += <f64>load<f32>(src + (<usize>(k + r + 1) << 2))
        sum -= <f64>load<f32>(src + (<usize>(k - r) << 2))
      }
      if (k >= length) break
    }
    // Near either end the window is cut short by the row's edge.
    store<f32>(dst + (<usize>k << 2), <f32>(sum / <f64>count))
    if (k + r + 1 < length) {
      sum += <f64>load<f32>(src + (<usize>(k + r + 1) << 2))
      count++
    }
    if (k - r >= 0) {
      sum -= <f64>load<f32>(src + (<usize>(k - r) << 2))
      count--
    }
  }
}

/** `RowBlur.put`: row `y` blurred horizontally into its ring slot. */
function put(ring: usize, slots: i32, r: i32, y: i32, row: usize): void {
  const at = ring + <usize>(y % slots) * <usize>width * 4
  if (r <= 0) memory.copy(at, row, <usize>width * 4)
  else blurRow(row, at, width, r)
}

/** Two float32 at `p` as a pair of float64. */
@inline
function load2(p: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(p))
}

/** A pair of float64 stored as two float32 at `p`. */
@inline
function store2(p: usize, v: v128): void {
  v128.store64_lane(p, f32x4.demote_f64x2_zero(v), 0)
}

/**
 * `RowBlur.take`: row `y` of the blurred result into `out`; returns the updated row count. Two columns
 * at a time. A row entering or leaving at the edges is read as zeros: the sums are never −0 (they start
 * at +0), so adding or taking away +0 leaves them as they are, as the TypeScript's separate loops do.
 */
function takeRow(ring: usize, slots: i32, r: i32, sums: usize, out: usize, y: i32, count0: i32): i32 {
  const w = width
  let count = count0
  if (r <= 0) {
    memory.copy(out, ring + <usize>(y % slots) * <usize>w * 4, <usize>w * 4)
    return count
  }
  if (y === 0) {
    memory.fill(sums, 0, <usize>w * 8)
    const end = min(r, height - 1)
    for (let k = 0; k <= end; k++) {
      const at = ring + <usize>(k % slots) * <usize>w * 4
      for (let x = 0; x < w; x++) {
        const s = sums + (<usize>x << 3)
        store<f64>(s, load<f64>(s) + <f64>load<f32>(at + (<usize>x << 2)))
      }
    }
    count = end + 1
  }
  const adding = y + r + 1 < height
  const dropping = y - r >= 0
  const add = adding ? ring + <usize>((y + r + 1) % slots) * <usize>w * 4 : zeroRow
  const drop = dropping ? ring + <usize>((y - r) % slots) * <usize>w * 4 : zeroRow
  const c = <f64>count
  const c2 = f64x2.splat(c)
  let x = 0
  for (; x + 1 < w; x += 2) {
    const sp = sums + (<usize>x << 3)
    const s = v128.load(sp)
    store2(out + (<usize>x << 2), f64x2.div(s, c2))
    v128.store(sp, f64x2.sub(f64x2.add(s, load2(add + (<usize>x << 2))), load2(drop + (<usize>x << 2))))
  }
  for (; x < w; x++) {
    const sp = sums + (<usize>x << 3)
    const s = load<f64>(sp)
    store<f32>(out + (<usize>x << 2), <f32>(s / c))
    store<f64>(sp, s + <f64>load<f32>(add + (<usize>x << 2)) - <f64>load<f32>(drop + (<usize>x << 2)))
  }
  if (adding && !dropping) count++
  else if (dropping && !adding) count--
  return count
}

/** `differenceRow` for row `y`, the candidate's Lab made from its bytes first; two pixels at a time. */
function differenceRow(y: i32, channels: i32, chromaWeight: f64): void {
  const w = width
  const start = <usize>y * <usize>w
  toLab(cand + start * <usize>channels, channels, w, candLab)
  const weight = f64x2.splat(chromaWeight)
  let x = 0
  for (; x + 1 < w; x += 2) {
    const i = (start + <usize>x) << 2
    const q = candLab + <usize>(x * 12)
    const first = v128.load(q) // L0 a0 b0 L1
    const second = v128.load(q, 12) // L1 a1 b1 L2
    const la = v128.shuffle<f32>(first, second, 0, 4, 1, 5) // L0 L1 a0 a1
    const dL = f64x2.sub(load2(refL + i), f64x2.promote_low_f32x4(la))
    const da = f64x2.sub(load2(refA + i), f64x2.promote_low_f32x4(v128.shuffle<f32>(la, la, 2, 3, 0, 1)))
    const db = f64x2.sub(load2(refB + i), f64x2.promote_low_f32x4(v128.shuffle<f32>(first, second, 2, 6, 2, 6)))
    const ab = f64x2.add(f64x2.mul(da, da), f64x2.mul(db, db))
    store2(errRow + (<usize>x << 2), f64x2.add(f64x2.mul(dL, dL), f64x2.mul(weight, ab)))
    store2(colourRow + (<usize>x << 2), ab)
  }
  for (; x < w; x++) {
    const i = (start + <usize>x) << 2
    const q = candLab + <usize>(x * 12)
    const dL = <f64>load<f32>(refL + i) - <f64>load<f32>(q)
    const da = <f64>load<f32>(refA + i) - <f64>load<f32>(q, 4)
    const db = <f64>load<f32>(refB + i) - <f64>load<f32>(q, 8)
    const ab = da * da + db * db
    store<f32>(errRow + (<usize>x << 2), <f32>(dL * dL + chromaWeight * ab))
    store<f32>(colourRow + (<usize>x << 2), <f32>ab)
  }
}

/**
 * `scoreRow`: the row's masked scores into `scores`; returns its largest. Two pixels at a time: the larger
 * is kept with `pmax` (`a < b ? b : a`), as the TypeScript's `if (s > worst)` keeps it.
 */
function scoreRow(y: i32, useMask: bool, useColour: bool, chromaScale: f64, maskFloor: f64, maskSlope: f64): f64 {
  const w = width
  const start = <usize>y * <usize>w
  const zero = f64x2.splat(0)
  const colourScale = f64x2.splat(chromaScale)
  const floor = f64x2.splat(maskFloor)
  const slope = f64x2.splat(maskSlope)
  let worst2 = zero
  let x = 0
  for (; x + 1 < w; x += 2) {
    const i = start + <usize>x
    let e = f64x2.sqrt(f64x2.max(zero, load2(errOut + (<usize>x << 2))))
    if (useColour) e = f64x2.max(e, f64x2.mul(colourScale, f64x2.sqrt(f64x2.max(zero, load2(colourOut + (<usize>x << 2))))))
    let s = f64x2.div(e, f64x2.add(floor, f64x2.mul(slope, load2(activity + (i << 2)))))
    // Outside the mask a score is +0, which never raises the row's largest (scores are never below 0).
    if (useMask) s = v128.and(s, i64x2.replace_lane(i64x2.splat(load<u8>(mask + i) !== 0 ? -1 : 0), 1, load<u8>(mask + i + 1) !== 0 ? -1 : 0))
    store2(scores + (i << 2), s)
    worst2 = f64x2.pmax(worst2, s)
  }
  const w0 = f64x2.extract_lane(worst2, 0)
  const w1 = f64x2.extract_lane(worst2, 1)
  let worst = w0 < w1 ? w1 : w0
  for (; x < w; x++) {
    const i = start + <usize>x
    if (useMask && load<u8>(mask + i) === 0) {
      store<f32>(scores + (i << 2), 0)
      continue
    }
    let e = Math.sqrt(max<f64>(0, <f64>load<f32>(errOut + (<usize>x << 2))))
    if (useColour) e = max<f64>(e, chromaScale * Math.sqrt(max<f64>(0, <f64>load<f32>(colourOut + (<usize>x << 2)))))
    const s = e / (maskFloor + maskSlope * <f64>load<f32>(activity + (i << 2)))
    store<f32>(scores + (i << 2), <f32>s)
    if (s > worst) worst = s
  }
  return worst
}

/** `topQuantile` (metric.ts): the score exceeded by `fraction` of the pixels, counted in tiers. */
function topQuantile(n: i32, top: f64, fraction: f64): f64 {
  if (top <= 0) return 0
  const k = <f64>(BINS - 1) / top
  const wanted = max<f64>(1, Math.floor(<f64>n * fraction))
  memory.fill(hist, 0, <usize>BINS * 4)
  let seen: f64 = 0
  let high = BINS
  for (let tier = 0; tier < 3; tier++) {
    const low = tier === 0 ? 2048 : tier === 1 ? 256 : 0
    const below = low > 0 ? (0.999 * <f64>low) / k : -Infinity
    for (let i = 0; i < n; i++) {
      const s = <f64>load<f32>(scores + (<usize>i << 2))
      if (s < below) continue
      let v = <i32>Math.floor(s * k)
      if (v > BINS - 1) v = BINS - 1
      if (v >= low && v < high) {
        const h = hist + (<usize>v << 2)
        store<u32>(h, load<u32>(h) + 1)
      }
    }
    for (let b = high - 1; b >= low; b--) {
      seen += <f64>load<u32>(hist + (<usize>b << 2))
      if (seen >= wanted) return (<f64>b + 0.5) / k
    }
    high = low
  }
  return 0
}

/**
 * The distance of the candidate whose sRGB bytes (`channels` per pixel) are at `cand` (see
 * `distanceSteps` in metric.ts, without its banding term). `counted`: the pixels the mask keeps.
 */
export function distance(
  channels: i32,
  useMask: bool,
  counted: i32,
  chromaWeight: f64,
  chromaScale: f64,
  maskFloor: f64,
  maskSlope: f64,
  scale: f64,
  poolTop: f64,
): f64 {
  const w = width
  const h = height
  const n = w * h
  const useColour = chromaScale > 0
  const ahead = max(max(0, errRadius), useColour ? colourRadius : 0) + 1
  let worst: f64 = 0
  let putRow = 0
  errCount = 0
  colourCount = 0
  for (let y = 0; y < h; y++) {
    for (const need = min(h - 1, y + ahead); putRow <= need; putRow++) {
      differenceRow(putRow, channels, chromaWeight)
      put(errRing, errSlots, errRadius, putRow, errRow)
      if (useColour) put(colourRing, colourSlots, colourRadius, putRow, colourRow)
    }
    errCount = takeRow(errRing, errSlots, errRadius, errSums, errOut, y, errCount)
    if (useColour) colourCount = takeRow(colourRing, colourSlots, colourRadius, colourSums, colourOut, y, colourCount)
    const rowWorst = scoreRow(y, useMask, useColour, chromaScale, maskFloor, maskSlope)
    if (rowWorst > worst) worst = rowWorst
  }
  return scale * (poolTop > 0 ? topQuantile(n, worst, (poolTop * <f64>counted) / <f64>n) : worst)
}
