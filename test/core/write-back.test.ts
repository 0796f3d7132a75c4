/**
 * Writing results over files already on disk (esbuild, Vite's public/ copies): a file that cannot be
 * written keeps its original bytes, is named in the summary, and fails the build only with failOnError.
 * SVGs are optimized locally, so no server is needed here.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { writeBack } from '../../src/core/adapters/write-back.ts'
import { resolveOptions } from '../../src/core/options.ts'
import { BuildError, BuildSession } from '../../src/core/pipeline.ts'

const badgePath = path.resolve('test/fixtures/app/src/images/badge.svg')
let dir: string

beforeEach(async () => {
  await mkdir(path.resolve('test/.tmp'), { recursive: true })
  dir = await mkdtemp(path.resolve('test/.tmp/write-back-'))
})
afterEach(() => rm(dir, { recursive: true, force: true }))

async function run(failOnError: boolean) {
  const badge = new Uint8Array(await readFile(badgePath))
  await writeFile(path.join(dir, 'ok.svg'), badge)
  // A directory where the optimized file should go: the atomic rename onto it fails.
  await mkdir(path.join(dir, 'blocked.svg', 'inside'), { recursive: true })
  const warnings: string[] = []
  const options = resolveOptions({ cache: false, failOnError, report: path.join(dir, 'report.json') }, { env: {} })
  const session = new BuildSession(options, { progress: false, logger: { info: () => {}, warn: (m) => void warnings.push(m) } })
  const results = await session.process([
    { fileName: 'ok.svg', data: badge },
    { fileName: 'blocked.svg', data: badge },
  ])
  expect(results.map((r) => r.changed)).toEqual([true, true])
  await writeBack(session, dir, results)
  const finished = await session.finish().then(() => null, (error: unknown) => error)
  const report = JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')) as { files: Array<{ file: string; optimizedSize: number; originalSize: number; error: string | null }> }
  return { badge, warnings, finished, report }
}

describe('writeBack', () => {
  it('keeps going when one file cannot be written, and names it', async () => {
    const { badge, warnings, finished, report } = await run(false)
    expect(finished).toBeNull()
    expect((await readFile(path.join(dir, 'ok.svg'))).byteLength).toBeLessThan(badge.byteLength)
    const blocked = report.files.find((f) => f.file === 'blocked.svg')!
    expect(blocked.error).toMatch(/^the optimized file could not be written: /)
    expect(blocked.optimizedSize).toBe(blocked.originalSize)
    expect(warnings.join('\n')).toMatch(/blocked\.svg: the optimized file could not be written/)
  })

  it('fails the build with failOnError', async () => {
    const { finished } = await run(true)
    expect(finished).toBeInstanceOf(BuildError)
    expect((finished as Error).message).toMatch(/blocked\.svg/)
  })
})
