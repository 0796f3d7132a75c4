import type {} from '@fastify/multipart'
import type { FastifyRequest } from 'fastify'
import { ApiError } from './envelope.ts'

export interface UploadedFile {
  filename: string
  data: Buffer
}

export interface FormData {
  fields: Record<string, string>
  files: Map<string, UploadedFile>
}

/** Multipart and form-urlencoded bodies give the same shape; every value is a string. */
export async function readForm(req: FastifyRequest): Promise<FormData> {
  const fields: Record<string, string> = Object.create(null) as Record<string, string>
  const files = new Map<string, UploadedFile>()
  if (req.isMultipart()) {
    try {
      for await (const part of req.parts()) {
        if (part.type === 'file') {
          const data = await part.toBuffer()
          files.set(part.fieldname, { filename: part.filename, data })
        } else {
          if (part.valueTruncated) throw new ApiError(400, `The field "${part.fieldname}" is too long.`)
          fields[part.fieldname] = String(part.value)
        }
      }
    } catch (error) {
      // Limits and our own errors keep their meaning; anything else is a malformed body from the client.
      if (error instanceof ApiError || (error as { code?: string }).code?.startsWith('FST_')) throw error
      throw new ApiError(400, `The multipart body could not be read: ${(error as Error).message}.`)
    }
  } else if (req.body && typeof req.body === 'object') {
    for (const [name, value] of Object.entries(req.body as Record<string, unknown>)) {
      fields[name] = Array.isArray(value) ? String(value[0]) : String(value)
    }
  }
  return { fields, files }
}
