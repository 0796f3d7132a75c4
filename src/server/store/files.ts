import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { createWriteStream } from 'node:fs'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { randomBytes } from 'node:crypto'
import type { BlobStore } from './types.ts'

/** Blobs as files under one root; keys are server-made (`uploads/<job>/<n>`, `out/<dir>/<name>`). */
export class FileBlobStore implements BlobStore {
  readonly root: string

  constructor(root: string) {
    this.root = path.resolve(root)
  }

  #path(key: string): string {
    const full = path.resolve(this.root, key)
    // Keys never come from users, but a path escaping the root would be a bug worth failing loudly on.
    if (!full.startsWith(this.root + path.sep)) throw new Error(`blob key escapes the store: ${key}`)
    return full
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const file = this.#path(key)
    await mkdir(path.dirname(file), { recursive: true })
    // Write then rename: a crash never leaves a half-written upload that a restart would run on.
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`
    await writeFile(tmp, data)
    await rename(tmp, file)
  }

  async putStream(key: string, source: AsyncIterable<Uint8Array>): Promise<number> {
    const file = this.#path(key)
    await mkdir(path.dirname(file), { recursive: true })
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`
    let size = 0
    async function* counted(): AsyncGenerator<Uint8Array> {
      for await (const chunk of source) {
        size += chunk.length
        yield chunk
      }
    }
    try {
      await pipeline(counted(), createWriteStream(tmp))
      await rename(tmp, file)
    } catch (error) {
      await rm(tmp, { force: true })
      throw error
    }
    return size
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return await readFile(this.#path(key))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.#path(key), { force: true })
  }

  async deletePrefix(prefix: string): Promise<void> {
    await rm(this.#path(prefix), { force: true, recursive: true })
  }

  async listChildren(prefix: string): Promise<{ name: string; mtimeMs: number }[]> {
    const dir = this.#path(prefix)
    let names: string[]
    try {
      names = await readdir(dir)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw error
    }
    const out: { name: string; mtimeMs: number }[] = []
    for (const name of names) {
      try {
        out.push({ name, mtimeMs: (await stat(path.join(dir, name))).mtimeMs })
      } catch {
        // Deleted meanwhile.
      }
    }
    return out
  }
}
