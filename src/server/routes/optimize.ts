import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { imageParamsFromWire } from '../../contract/params.ts'
import { requireAccount } from '../auth.ts'
import { publicBase, type ServerContext } from '../context.ts'
import { ApiError, processingEnvelope } from '../envelope.ts'
import { readForm, UploadStoreError, type StoredFile } from '../form.ts'
import { urlFileName } from '../naming.ts'
import { assertPublicUrl } from '../net-guard.ts'
import type { JobInput, JobParams, JobRecord } from '../store/types.ts'
import type { RouteLimits } from './limits.ts'

export const MAX_IMAGES = 5
const TYPES = ['url', 'urls', 'file', 'files'] as const

function httpUrl(name: string, raw: string | undefined): URL {
  if (raw === undefined || raw.trim() === '') throw new ApiError(400, `The "${name}" field is required.`)
  let url: URL
  try {
    url = new URL(raw.trim())
  } catch {
    throw new ApiError(400, `${name} is not a valid URL: "${raw.slice(0, 200)}".`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ApiError(400, `${name} must be an http or https URL, got "${url.protocol}".`)
  }
  return url
}

/**
 * `file1`..`file5` / `url1`..`url5`: numbering may have gaps; input order is the numbers' order.
 * Only canonical numbers count (`url01` would otherwise alias `url1` and lift the 5-image cap),
 * and more than 5 numbered parts, however spelled, is refused.
 */
function numbered<T>(prefix: string, entries: Iterable<[string, T]>): T[] {
  const anyNumber = new RegExp(`^${prefix}\\d+$`)
  const canonical = new RegExp(`^${prefix}([1-9]\\d*)$`)
  const found: [number, T][] = []
  let seen = 0
  for (const [name, value] of entries) {
    if (!anyNumber.test(name)) continue
    seen += 1
    if (seen > MAX_IMAGES) {
      throw new ApiError(400, `At most ${MAX_IMAGES} images per request: use ${prefix}1..${prefix}${MAX_IMAGES}.`)
    }
    const match = canonical.exec(name)
    const n = match ? Number(match[1]) : 0
    if (n < 1 || n > MAX_IMAGES) {
      throw new ApiError(400, `At most ${MAX_IMAGES} images per request: use ${prefix}1..${prefix}${MAX_IMAGES}, got "${name}".`)
    }
    found.push([n, value])
  }
  return found.sort((a, b) => a[0] - b[0]).map(([, v]) => v)
}

export function registerOptimizeRoute(app: FastifyInstance, ctx: ServerContext, limits: RouteLimits): void {
  app.post('/v1/optimize', { config: limits.api, preHandler: requireAccount(ctx, 404) }, async (req) => {
    const account = req.account!
    const id = randomUUID()
    // Uploads are written to the store as they arrive; any refusal below removes them again.
    try {
      return await submit(ctx, req, account.id, id)
    } catch (error) {
      await ctx.store.blobs.deletePrefix(`uploads/${id}`).catch(() => {})
      throw error
    }
  })
}

async function submit(ctx: ServerContext, req: FastifyRequest, accountId: string, id: string): Promise<unknown> {
  const { fields, files } = await readForm(req, async (stream, index) => {
    const blob = `uploads/${id}/${index}`
    try {
      return { blob, size: await ctx.store.blobs.putStream(blob, stream) }
    } catch (error) {
      // A stream error is the client's (aborted or malformed upload); anything else is the store's.
      if ((error as { code?: string }).code?.startsWith('ERR_STREAM') || stream.errored) throw error
      throw new UploadStoreError(`could not persist an upload: ${(error as Error).message}`, { cause: error })
    }
  })
  const type = fields.type
  if (type === undefined || type === '') {
    throw new ApiError(400, 'The "type" field is required: url, urls, file or files.')
  }
  if (!(TYPES as readonly string[]).includes(type)) {
    throw new ApiError(400, `type must be one of url, urls, file, files; got "${type.slice(0, 40)}".`)
  }

  let uploads: StoredFile[] = []
  let urls: URL[] = []
  if (type === 'file') {
    const file = files.get('file')
    if (!file) throw new ApiError(400, 'Missing file: send the image as the "file" part (type=file).')
    uploads = [file]
  } else if (type === 'files') {
    uploads = numbered('file', files)
    if (uploads.length === 0) throw new ApiError(400, 'Missing files: send the images as file1..file5 (type=files).')
  } else if (type === 'url') {
    urls = [httpUrl('url', fields.url)]
  } else {
    const raw = numbered('url', Object.entries(fields))
    if (raw.length === 0) throw new ApiError(400, 'Missing urls: send url1..url5 (type=urls).')
    urls = raw.map((value, i) => httpUrl(`url${i + 1}`, value))
  }

  let callbackUrl: string | null = null
  if (fields.callback_url !== undefined && fields.callback_url.trim() !== '') {
    const url = httpUrl('callback_url', fields.callback_url)
    if (!ctx.options.allowPrivateUrls) {
      try {
        await assertPublicUrl(url)
      } catch (error) {
        throw new ApiError(400, `callback_url refused: ${(error as Error).message}.`)
      }
    }
    callbackUrl = url.href
  }

  const params: JobParams = {
    ...imageParamsFromWire(fields, (name, allowed, value) => {
      throw new ApiError(400, `${name} must be ${allowed}, got "${String(value).slice(0, 40)}".`)
    }),
    callbackUrl,
    httpUser: fields.http_user || null,
    httpPass: fields.http_pass || null,
    publicBase: publicBase(ctx, req),
  }

  const inputs: JobInput[] =
    uploads.length > 0
      ? uploads.map((u, i) => ({ kind: 'file', name: u.filename || `file${i + 1}`, blob: u.blob }))
      : urls.map((u) => ({ kind: 'url', name: urlFileName(u), url: u.href }))

  // A quick refusal with the balance in the message; the authoritative check is the atomic reservation below.
  const balance = ctx.store.getAccountById(accountId)?.tokens ?? 0
  const notEnough = (tokens: number): ApiError =>
    new ApiError(
      455,
      `Not enough tokens: this request has ${inputs.length} image(s) and the account has ${tokens} token(s) left. Buy more tokens or send fewer images.`,
    )
  if (balance !== -1 && balance < inputs.length) throw notEnough(balance)

  const job: JobRecord = {
    id,
    accountId,
    status: 'queued',
    params,
    inputs,
    reserved: inputs.length,
    attempts: 0,
    result: null,
    error: null,
    createdAt: ctx.options.now(),
    finishedAt: null,
  }
  // The uploads are already in the store: once this commits, a restart can run the job.
  if (!ctx.store.submitJob(job, inputs.length)) throw notEnough(ctx.store.getAccountById(accountId)?.tokens ?? 0)
  ctx.runner.start(id)
  return processingEnvelope(id)
}
