/**
 * `OptimizeParams` → the form fields of `POST /optimize`, validated with exact messages.
 */
import type { Compression, OptimizeParams } from './types.ts'

const COMPRESSIONS: readonly Compression[] = ['intelligent', 'ultra', 'lossless']

export interface ResolvedParams {
  compression: Compression
  webp: boolean
  keepExif: boolean
  cmykToRgb: boolean
  maxWidth: number
  maxHeight: number
  callbackUrl?: string
  httpUser?: string
  httpPass?: string
}

export function resolveParams(params: OptimizeParams = {}): ResolvedParams {
  if (params === null || typeof params !== 'object') throw new TypeError(`params must be an object, got ${String(params)}`)
  const compression = params.compression ?? 'intelligent'
  if (!COMPRESSIONS.includes(compression)) {
    throw new TypeError(`compression must be "intelligent", "ultra" or "lossless", got ${JSON.stringify(compression)}`)
  }
  const resolved: ResolvedParams = {
    compression,
    webp: flag('webp', params.webp, false),
    keepExif: flag('keepExif', params.keepExif, false),
    cmykToRgb: flag('cmykToRgb', params.cmykToRgb, true),
    maxWidth: size('maxWidth', params.maxWidth),
    maxHeight: size('maxHeight', params.maxHeight),
  }
  if (params.callbackUrl !== undefined) {
    if (typeof params.callbackUrl !== 'string' || !/^https?:\/\//i.test(params.callbackUrl)) {
      throw new TypeError(`callbackUrl must be an http(s) URL, got ${JSON.stringify(params.callbackUrl)}`)
    }
    resolved.callbackUrl = params.callbackUrl
  }
  if (params.httpUser !== undefined) resolved.httpUser = text('httpUser', params.httpUser)
  if (params.httpPass !== undefined) resolved.httpPass = text('httpPass', params.httpPass)
  return resolved
}

/** The form fields common to every `/optimize` request of a call. */
export function paramFields(p: ResolvedParams): Array<[string, string]> {
  const fields: Array<[string, string]> = [
    ['compression', p.compression],
    ['webp', p.webp ? '1' : '0'],
    ['cmyktorgb', p.cmykToRgb ? '1' : '0'],
    ['keep_exif', p.keepExif ? '1' : '0'],
    ['max_width', String(p.maxWidth)],
    ['max_height', String(p.maxHeight)],
  ]
  if (p.callbackUrl) fields.push(['callback_url', p.callbackUrl])
  if (p.httpUser !== undefined) fields.push(['http_user', p.httpUser])
  if (p.httpPass !== undefined) fields.push(['http_pass', p.httpPass])
  return fields
}

function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be true or false, got ${JSON.stringify(value)}`)
  return value
}

function size(name: string, value: unknown): number {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new TypeError(`${name} must be a whole number >= 0 (0 = off), got ${JSON.stringify(value)}`)
  }
  return value
}

function text(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string`)
  return value
}
