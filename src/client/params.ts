/**
 * `OptimizeParams` → the form fields of `POST /optimize`: the image settings through the contract's one
 * validator (`src/contract/params.ts`), plus the per-call callback and HTTP auth fields.
 */
import { ArgumentError } from '../contract/errors.ts'
import { type ImageParams, resolveImageParams, toWireFields } from '../contract/params.ts'
import type { OptimizeParams } from './types.ts'

export interface ResolvedParams extends ImageParams {
  callbackUrl?: string
  httpUser?: string
  httpPass?: string
}

export function resolveParams(params: OptimizeParams = {}): ResolvedParams {
  if (params === null || typeof params !== 'object') throw new ArgumentError('params', 'an object', params)
  const resolved: ResolvedParams = resolveImageParams(params)
  if (params.callbackUrl !== undefined) {
    if (typeof params.callbackUrl !== 'string' || !/^https?:\/\//i.test(params.callbackUrl)) {
      throw new ArgumentError('callbackUrl', 'an http(s) URL', params.callbackUrl)
    }
    resolved.callbackUrl = params.callbackUrl
  }
  if (params.httpUser !== undefined) resolved.httpUser = text('httpUser', params.httpUser)
  if (params.httpPass !== undefined) resolved.httpPass = text('httpPass', params.httpPass)
  return resolved
}

/** The form fields common to every `/optimize` request of a call. */
export function paramFields(p: ResolvedParams): Array<[string, string]> {
  const fields = toWireFields(p)
  if (p.callbackUrl) fields.push(['callback_url', p.callbackUrl])
  if (p.httpUser !== undefined) fields.push(['http_user', p.httpUser])
  if (p.httpPass !== undefined) fields.push(['http_pass', p.httpPass])
  return fields
}

function text(name: string, value: unknown): string {
  // The value may be a password: never echo it.
  if (typeof value !== 'string') throw new ArgumentError(name, 'a string', typeof value)
  return value
}
