/**
 * The six image settings of the contract (`docs/megaoptim-api.md`, `POST /optimize`), declared once:
 * the levels, the record, its defaults, the one validator, and the wire field names. The plugin's
 * options, the CLI's flags, the client's form, the server's parser, the store and the engine all take
 * them from here.
 */
import { ArgumentError } from './errors.ts'

export const COMPRESSIONS = ['intelligent', 'ultra', 'lossless'] as const
export type Compression = (typeof COMPRESSIONS)[number]

/** The settings that change what an image becomes (and so belong in any cache key of a result). */
export interface ImageParams {
  compression: Compression
  /** Also produce a WebP version (kept only when smaller). */
  webp: boolean
  /** Keep EXIF/IPTC; when false they are stripped, after auto-orienting. */
  keepExif: boolean
  /** Convert CMYK to sRGB through its ICC profile. */
  cmykToRgb: boolean
  /** 0 = off; otherwise fit inside the box, keep the aspect ratio, never enlarge. */
  maxWidth: number
  maxHeight: number
}

export const DEFAULT_IMAGE_PARAMS: Readonly<ImageParams> = Object.freeze({
  compression: 'intelligent',
  webp: false,
  keepExif: false,
  cmykToRgb: true,
  maxWidth: 0,
  maxHeight: 0,
})

/** Each setting's form field in `POST /optimize`. */
export const WIRE_FIELDS: Readonly<Record<keyof ImageParams, string>> = Object.freeze({
  compression: 'compression',
  webp: 'webp',
  cmykToRgb: 'cmyktorgb',
  keepExif: 'keep_exif',
  maxWidth: 'max_width',
  maxHeight: 'max_height',
})

/** The API refuses box sizes past this many digits; far above any image the engine accepts. */
const MAX_BOX = 999_999

/** Says how to report a bad value; the default throws an {@link ArgumentError}. */
export type OnInvalid = (name: string, allowed: string, value: unknown) => never

const argumentError: OnInvalid = (name, allowed, value) => {
  throw new ArgumentError(name, allowed, value)
}

export const ALLOWED = {
  compression: COMPRESSIONS.map((c) => JSON.stringify(c)).join(', ').replace(/, ([^,]*)$/, ' or $1'),
  flag: 'true or false',
  box: `a whole number from 0 (off) to ${MAX_BOX}`,
} as const

export function isCompression(value: unknown): value is Compression {
  return (COMPRESSIONS as readonly unknown[]).includes(value)
}

/**
 * The one validator: fills in the defaults and checks every given value, naming the first bad one
 * through `onInvalid` (an `OptionsError` in the plugin, a usage error in the CLI, a 400 in the server).
 */
export function resolveImageParams(input: Partial<Record<keyof ImageParams, unknown>> = {}, onInvalid: OnInvalid = argumentError): ImageParams {
  const compression = input.compression ?? DEFAULT_IMAGE_PARAMS.compression
  if (!isCompression(compression)) onInvalid('compression', ALLOWED.compression, input.compression)
  return {
    compression,
    webp: flag('webp', input.webp, onInvalid),
    keepExif: flag('keepExif', input.keepExif, onInvalid),
    cmykToRgb: flag('cmykToRgb', input.cmykToRgb, onInvalid),
    maxWidth: box('maxWidth', input.maxWidth, onInvalid),
    maxHeight: box('maxHeight', input.maxHeight, onInvalid),
  }
}

function flag(name: 'webp' | 'keepExif' | 'cmykToRgb', value: unknown, onInvalid: OnInvalid): boolean {
  if (value === undefined) return DEFAULT_IMAGE_PARAMS[name]
  if (typeof value !== 'boolean') onInvalid(name, ALLOWED.flag, value)
  return value
}

function box(name: 'maxWidth' | 'maxHeight', value: unknown, onInvalid: OnInvalid): number {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_BOX) onInvalid(name, ALLOWED.box, value)
  return value
}

/** The form fields of `POST /optimize` for these settings, in the contract's spelling. */
export function toWireFields(p: ImageParams): Array<[string, string]> {
  return [
    [WIRE_FIELDS.compression, p.compression],
    [WIRE_FIELDS.webp, p.webp ? '1' : '0'],
    [WIRE_FIELDS.cmykToRgb, p.cmykToRgb ? '1' : '0'],
    [WIRE_FIELDS.keepExif, p.keepExif ? '1' : '0'],
    [WIRE_FIELDS.maxWidth, String(p.maxWidth)],
    [WIRE_FIELDS.maxHeight, String(p.maxHeight)],
  ]
}

/**
 * The settings from a request's form fields, as the server reads them. Per the contract an unknown
 * `compression` (the hosted API's legacy `lossy` among them) means `intelligent`; flags are `1`/`0` (or
 * `true`/`false`); an empty field means the default. A bad flag or box is refused with the field's wire name.
 */
export function imageParamsFromWire(fields: Readonly<Record<string, string | undefined>>, onInvalid: OnInvalid = argumentError): ImageParams {
  const raw = fields[WIRE_FIELDS.compression]?.trim().toLowerCase()
  const wireFlag = (name: 'webp' | 'keepExif' | 'cmykToRgb'): boolean => {
    const value = fields[WIRE_FIELDS[name]]
    if (value === undefined || value.trim() === '') return DEFAULT_IMAGE_PARAMS[name]
    const v = value.trim().toLowerCase()
    if (v === '1' || v === 'true') return true
    if (v === '0' || v === 'false') return false
    return onInvalid(WIRE_FIELDS[name], '1 or 0', value)
  }
  const wireBox = (name: 'maxWidth' | 'maxHeight'): number => {
    const value = fields[WIRE_FIELDS[name]]
    if (value === undefined || value.trim() === '') return 0
    if (!/^\d{1,6}$/.test(value.trim())) onInvalid(WIRE_FIELDS[name], '0 (off) or a whole number of pixels', value)
    return Number(value.trim())
  }
  return {
    compression: isCompression(raw) ? raw : 'intelligent',
    webp: wireFlag('webp'),
    keepExif: wireFlag('keepExif'),
    cmykToRgb: wireFlag('cmykToRgb'),
    maxWidth: wireBox('maxWidth'),
    maxHeight: wireBox('maxHeight'),
  }
}
