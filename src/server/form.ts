import type { Readable } from 'node:stream'
import type {} from '@fastify/multipart'
import type { FastifyRequest } from 'fastify'
import { ApiError } from './envelope.ts'

export interface StoredFile {
  filename: string
  /** Where the upload was written (the store's blob key). */
  blob: string
  size: number
}

export interface FormData {
  fields: Record<string, string>
  files: Map<string, StoredFile>
}

/** A store failure while persisting an upload: the server's fault (500), not a malformed body. */
export class UploadStoreError extends Error {
  override readonly name = 'UploadStoreError'
}

/**
 * Multipart and form-urlencoded bodies give the same shape; every value is a string. File parts are
 * streamed to `storeFile` as they arrive (never buffered whole here); without it they are drained.
 */
export async function readForm(
  req: FastifyRequest,
  storeFile?: (stream: Readable, index: number) => Promise<{ blob: string; size: number }>,
): Promise<FormData> {
  const fields: Record<string, string> = Object.create(null) as Record<string, string>
  const files = new Map<string, StoredFile>()
  if (req.isMultipart()) {
    let index = 0
    try {
      for await (const part of req.parts()) {
        if (part.type === 'file') {
          if (!storeFile) {
            part.file.resume()
            continue
          }
          let stored: { blob: string; size: number }
          try {
            stored = await storeFile(part.file, index++)
          } catch (error) {
            if (part.file.truncated) throw Object.assign(new Error('request file too large'), { code: 'FST_REQ_FILE_TOO_LARGE' })
            throw error
          }
          if (part.file.truncated) throw Object.assign(new Error('request file too large'), { code: 'FST_REQ_FILE_TOO_LARGE' })
          files.set(part.fieldname, { filename: part.filename, ...stored })
        } else {
          if (part.valueTruncated) throw new ApiError(400, `The field "${part.fieldname}" is too long.`)
          fields[part.fieldname] = String(part.value)
        }
      }
    } catch (error) {
      // Limits, store failures and our own errors keep their meaning; anything else is a malformed body.
      if (error instanceof ApiError || error instanceof UploadStoreError || (error as { code?: string }).code?.startsWith('FST_')) {
        throw error
      }
      throw new ApiError(400, `The multipart body could not be read: ${(error as Error).message}.`)
    }
  } else if (req.body && typeof req.body === 'object') {
    for (const [name, value] of Object.entries(req.body as Record<string, unknown>)) {
      fields[name] = Array.isArray(value) ? String(value[0]) : String(value)
    }
  }
  return { fields, files }
}
