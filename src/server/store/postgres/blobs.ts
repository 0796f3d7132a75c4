import type Pg from 'pg'
import type { BlobStore } from '../types.ts'

/**
 * Uploads and results as `bytea` rows. Chosen over files on a shared `--blob-dir`: a replica then needs
 * the database URL and nothing else (no NFS mount to provision, no file locking or cache coherence to
 * trust), every write is transactional with the rows pointing to it, and the bytes are short-lived
 * (uploads until their job ends, results one hour). Images are at most `maxFileSize` (32 MiB by
 * default), well inside `bytea`'s 1 GB; PostgreSQL compresses and stores them out of line (TOAST).
 */
export class PostgresBlobStore implements BlobStore {
  readonly #pool: Pg.Pool

  constructor(pool: Pg.Pool) {
    this.#pool = pool
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    await this.#pool.query(
      `INSERT INTO blobs (key, data, written_at) VALUES ($1, $2, $3)
       ON CONFLICT (key) DO UPDATE SET data = excluded.data, written_at = excluded.written_at`,
      [key, Buffer.from(data.buffer, data.byteOffset, data.byteLength), Date.now()],
    )
  }

  async putStream(key: string, source: AsyncIterable<Uint8Array>): Promise<number> {
    // The upload limit bounds the size; one row is written whole or not at all.
    const chunks: Uint8Array[] = []
    for await (const chunk of source) chunks.push(chunk)
    const data = Buffer.concat(chunks)
    await this.put(key, data)
    return data.length
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const { rows } = await this.#pool.query<{ data: Buffer }>('SELECT data FROM blobs WHERE key = $1', [key])
    return rows[0]?.data
  }

  async delete(key: string): Promise<void> {
    await this.#pool.query('DELETE FROM blobs WHERE key = $1', [key])
  }

  async deletePrefix(prefix: string): Promise<void> {
    const base = prefix.replace(/\/+$/, '')
    await this.#pool.query(`DELETE FROM blobs WHERE key = $1 OR starts_with(key, $1 || '/')`, [base])
  }

  async listChildren(prefix: string): Promise<{ name: string; mtimeMs: number }[]> {
    const { rows } = await this.#pool.query<{ name: string; written: number }>(
      `SELECT split_part(substr(key, length($1) + 2), '/', 1) AS name, max(written_at) AS written
       FROM blobs WHERE starts_with(key, $1 || '/') GROUP BY 1`,
      [prefix],
    )
    return rows.map((r) => ({ name: r.name, mtimeMs: r.written }))
  }
}
