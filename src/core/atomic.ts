/** Writes that never leave a half-written file behind: a temp file in the same directory, then rename. */
import { randomBytes } from 'node:crypto'
import { copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'

export function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  return viaTemp(file, (temp) => writeFile(temp, data))
}

export function copyFileAtomic(from: string, to: string): Promise<void> {
  return viaTemp(to, (temp) => copyFile(from, temp))
}

async function viaTemp(file: string, fill: (temp: string) => Promise<void>): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true })
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await fill(temp)
    await rename(temp, file)
  } catch (error) {
    await rm(temp, { force: true })
    throw error
  }
}
