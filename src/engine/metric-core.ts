import { loadSharp } from './load-sharp.ts'
import { METRIC_CORE_WASM } from './metric-core-binary.ts'

/**
 * The metric's per-measurement work in WebAssembly (assembly/metric.ts): the same distance as the
 * TypeScript in metric.ts, to the bit, in about a third of the time. A candidate is handed over as 8-bit
 * sRGB and turned into CIELAB inside, with libvips' own tables, so libvips no longer writes 12 bytes of
 * float Lab per pixel for every measurement (it did about 124 MP of them on the large app's cold build).
 *
 * One `CoreView` per reference view: its instance holds the reference planes, the scores and the
 * candidate's bytes, laid out once; its memory goes with it when the reference is dropped.
 */
interface CoreExports {
  memory: { buffer: ArrayBuffer }
  setup(width: number, height: number, errorRadius: number, chromaRadius: number, maskRadius: number): number
  referenceLab(channels: number): void
  referenceActivity(): void
  distance(
    channels: number,
    useMask: number,
    counted: number,
    chromaWeight: number,
    chromaScale: number,
    maskFloor: number,
    maskSlope: number,
    scale: number,
    poolTop: number,
  ): number
}

/** libvips' XYZ → Lab cube-root table has this many entries (colour/XYZ2Lab.c). */
const CBRT_ENTRIES = 100_000
/** sRGB → XYZ, the coefficients libvips uses (colour/scRGB2XYZ.c), row by row. */
const SRGB_TO_XYZ = [0.4124, 0.3576, 0.1805, 0.2126, 0.7152, 0.0722, 0.0193, 0.1192, 0.9505]

/** The core's tables, in the layout assembly/metric.ts reads them. */
interface Tables {
  /** (X, Y, Z, 0) that each byte of R, G and B adds: 3 × 256 × 4 floats. */
  xyz: Float32Array
  cbrt: Float32Array
  /** cbrt[i + 1] − cbrt[i], the interpolation's slope (the last entry unused). */
  step: Float32Array
}

/** Node's WebAssembly, typed as far as used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object, imports: object) => { exports: unknown }
}

/** The runtime's WebAssembly, read when used (a test stubs it). */
const wasmApi = (): WasmApi => (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly

/** The compiled module; null where this runtime cannot compile it (WebAssembly SIMD needs SSE4.1 or NEON). */
let module: object | null | undefined

/**
 * Whether the core can run here. Where it cannot, metric.ts measures in TypeScript instead: the same
 * distances, only slower, so no image is lost to an old CPU.
 */
export function coreAvailable(): boolean {
  if (module === undefined) {
    try {
      module = new (wasmApi().Module)(Buffer.from(METRIC_CORE_WASM, 'base64'))
    } catch {
      module = null
    }
  }
  return module !== null
}
let tables: Promise<Tables> | undefined

/**
 * The tables, as libvips builds them, once per thread: each byte's linear value is read from libvips
 * itself (it computes them with the C library's powf), times each coefficient, times 100 (the D65 white's
 * Y); the cube roots as in XYZ2Lab.c. Every entry is a float32 computed with float32 rounding, as libvips'
 * are. Checked against libvips on all 16.7 million sRGB colours (test/engine/metric-core.test.ts).
 */
function loadTables(): Promise<Tables> {
  tables ??= (async () => {
    const sharp = await loadSharp()
    const grey = Buffer.alloc(256 * 3)
    for (let v = 0; v < 256; v++) grey.fill(v, v * 3, v * 3 + 3)
    const linear = await sharp(grey, { raw: { width: 256, height: 1, channels: 3 } })
      .toColourspace('scrgb')
      .raw({ depth: 'float' })
      .toBuffer()
    const xyz = new Float32Array(3 * 256 * 4)
    for (let axis = 0; axis < 3; axis++) {
      for (let channel = 0; channel < 3; channel++) {
        const m = Math.fround(SRGB_TO_XYZ[axis * 3 + channel]!)
        for (let v = 0; v < 256; v++) xyz[(channel * 256 + v) * 4 + axis] = m * Math.fround(linear.readFloatLE(v * 12) * 100)
      }
    }
    const cbrt = new Float32Array(CBRT_ENTRIES)
    const linearPart = Math.fround(7.787)
    const offset = Math.fround(16 / 116)
    for (let i = 0; i < CBRT_ENTRIES; i++) {
      const y = Math.fround(i / CBRT_ENTRIES)
      cbrt[i] = y < 0.008856 ? Math.fround(linearPart * y) + offset : Math.cbrt(y)
    }
    const step = new Float32Array(CBRT_ENTRIES)
    for (let i = 0; i + 1 < CBRT_ENTRIES; i++) step[i] = cbrt[i + 1]! - cbrt[i]!
    return { xyz, cbrt, step }
  })()
  tables.catch(() => {
    tables = undefined
  })
  return tables
}

/** The parameters `distance` reads (a subset of MetricParams: no banding term). */
export interface CoreParams {
  chromaWeight: number
  chromaScale: number
  chromaRadius: number
  errorRadius: number
  maskRadius: number
  maskFloor: number
  maskSlope: number
  scale: number
  poolTop: number
}

export class CoreView {
  readonly L: Float32Array
  readonly a: Float32Array
  readonly b: Float32Array
  readonly activity: Float32Array
  private readonly bytes: Uint8Array
  private readonly counted: number

  private constructor(
    private readonly core: CoreExports,
    readonly width: number,
    readonly height: number,
    private readonly params: CoreParams,
    private readonly candidateAt: number,
    private readonly useMask: boolean,
    views: { L: number; a: number; b: number; activity: number; mask: number },
    mask: Uint8Array | undefined,
  ) {
    const n = width * height
    const buffer = core.memory.buffer
    this.L = new Float32Array(buffer, views.L, n)
    this.a = new Float32Array(buffer, views.a, n)
    this.b = new Float32Array(buffer, views.b, n)
    this.activity = new Float32Array(buffer, views.activity, n)
    this.bytes = new Uint8Array(buffer)
    let counted = n
    if (mask) {
      this.bytes.set(mask, views.mask)
      for (let i = 0; i < n; i++) if (mask[i] === 0) counted--
    }
    this.counted = counted
  }

  /**
   * A view of the reference whose sRGB bytes (`channels` per pixel, the first three read) are given: its
   * Lab planes and activity map are made inside.
   */
  static async create(
    pixels: { data: Uint8Array; width: number; height: number; channels: number },
    params: CoreParams,
    mask?: Uint8Array,
  ): Promise<CoreView> {
    const t = await loadTables()
    if (!coreAvailable()) throw new Error('The metric core cannot run on this runtime (no WebAssembly SIMD).')
    const core = new (wasmApi().Instance)(module!, {}).exports as unknown as CoreExports
    const layoutAt = core.setup(pixels.width, pixels.height, params.errorRadius, params.chromaRadius, params.maskRadius)
    if (layoutAt === 0) throw new RangeError(`The metric cannot hold a ${pixels.width}x${pixels.height} image.`)
    const layout = new Uint32Array(core.memory.buffer, layoutAt, 10)
    const [xyzAt, cbrtAt, stepAt, L, a, b, activity, maskAt, , candidateAt] = layout as unknown as number[]
    new Float32Array(core.memory.buffer, xyzAt, t.xyz.length).set(t.xyz)
    new Float32Array(core.memory.buffer, cbrtAt, t.cbrt.length).set(t.cbrt)
    new Float32Array(core.memory.buffer, stepAt, t.step.length).set(t.step)
    const view = new CoreView(core, pixels.width, pixels.height, params, candidateAt!, mask !== undefined, { L: L!, a: a!, b: b!, activity: activity!, mask: maskAt! }, mask)
    view.bytes.set(pixels.data, candidateAt)
    core.referenceLab(pixels.channels)
    core.referenceActivity()
    return view
  }

  /** The distance to a candidate given as sRGB bytes of the reference's size. */
  distance(pixels: { data: Uint8Array; width: number; height: number; channels: number }): number {
    if (pixels.width !== this.width || pixels.height !== this.height || pixels.channels < 3) return Infinity
    this.bytes.set(pixels.data, this.candidateAt)
    const p = this.params
    return this.core.distance(
      pixels.channels,
      this.useMask ? 1 : 0,
      this.counted,
      p.chromaWeight,
      p.chromaScale,
      p.maskFloor,
      p.maskSlope,
      p.scale,
      p.poolTop,
    )
  }
}
