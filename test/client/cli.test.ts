/**
 * `megaoptim optimize` and `megaoptim info` end to end against the loopback fake API: real files, real
 * output trees, exit codes, reports. One test spawns the real binary entry through tsx.
 */
import { execFile } from 'node:child_process'
import { type Dirent, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, describe, expect, test } from 'vitest'
import { run as runInfo } from '../../src/cli/info.ts'
import { run as runOptimize } from '../../src/cli/optimize.ts'
import type { CliIo } from '../../src/cli/shared-client.ts'
import { startFakeApi, type FakeApi, type FakeApiOptions } from '../helpers/fake-api.ts'
import { FIXTURES } from './_fixtures.ts'

let api: FakeApi | undefined
afterEach(async () => {
  await api?.close()
  api = undefined
})

const KEY = 'CLIkey0123456789abcdefghijklmnop'

function io(env: NodeJS.ProcessEnv = { MEGAOPTIM_API_KEY: KEY }): CliIo & { out: () => string; err: () => string } {
  let out = ''
  let err = ''
  return {
    env,
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t), isTTY: false },
    out: () => out,
    err: () => err,
  }
}

/** A tree with images at two levels and a non-image that must be left alone. */
function makeTree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'megaoptim-cli-'))
  mkdirSync(join(dir, 'sub', 'deeper'), { recursive: true })
  cpSync(join(FIXTURES, 'horse.png'), join(dir, 'horse.png'))
  cpSync(join(FIXTURES, 'rocket.jpg'), join(dir, 'sub', 'rocket.JPG'))
  cpSync(join(FIXTURES, 'no_time_for_that_tiny.gif'), join(dir, 'sub', 'deeper', 'anim.gif'))
  cpSync(join(FIXTURES, 'text.png'), join(dir, 'sub', 'deeper', 'text one.png'))
  writeFileSync(join(dir, 'notes.txt'), 'not an image')
  return dir
}

function listFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort()
}

async function fake(options: FakeApiOptions = {}) {
  api = await startFakeApi({ apiKey: KEY, ...options })
  return api
}

describe('megaoptim optimize', () => {
  test('--out mirrors the tree with optimized images, WebP siblings, a report and a summary', async () => {
    const api = await fake({ tokens: 100 })
    const dir = makeTree()
    const out = join(dir, 'out')
    const report = join(dir, 'report.json')
    const cli = io()
    const code = await runOptimize([dir, '--out', out, '--endpoint', api.endpoint, '--webp', '--report', report, '--rate-limit', '6000'], cli)
    expect(code).toBe(0)
    expect(listFiles(out)).toEqual([
      'horse.png',
      'horse.png.webp',
      'sub/deeper/anim.gif',
      'sub/deeper/anim.gif.webp',
      'sub/deeper/text one.png',
      'sub/deeper/text one.png.webp',
      'sub/rocket.JPG',
      'sub/rocket.JPG.webp',
    ])
    const original = readFileSync(join(dir, 'horse.png'))
    const optimized = readFileSync(join(out, 'horse.png'))
    expect(optimized.length).toBeLessThan(original.length)
    expect(optimized.equals(original.subarray(0, optimized.length))).toBe(true)
    expect(api.of('optimize')[0]!.fields).toMatchObject({ webp: '1', compression: 'intelligent', cmyktorgb: '1' })
    expect(cli.out()).toMatch(/4 files: 4 optimized, 0 without gain, 0 failed/)
    expect(cli.out()).toMatch(/requests: 2 \(optimize 1, result 1\)/)
    expect(cli.out()).toMatch(/tokens left: 96/)
    const json = JSON.parse(readFileSync(report, 'utf8'))
    expect(json.summary).toMatchObject({ files: 4, optimized: 4, failed: 0, requests: 2, tokensLeft: 96 })
    expect(json.files.map((f: { file: string }) => f.file)).toContain('sub/deeper/text one.png')
    for (const text of [cli.out(), cli.err(), readFileSync(report, 'utf8')]) expect(text).not.toContain(KEY)
  })

  test('whatever fails keeps its original bytes in the output, and the exit code says so', async () => {
    const api = await fake()
    api.inject('download', { kind: 'downloadWrongSize' })
    const dir = makeTree()
    const out = join(dir, 'out')
    const report = join(dir, 'r.json')
    const cli = io()
    const code = await runOptimize([dir, '--out', out, '--endpoint', api.endpoint, '--report', report, '--rate-limit', '6000'], cli)
    expect(code).toBe(1)
    const json = JSON.parse(readFileSync(report, 'utf8'))
    const failed = json.files.filter((f: { status: string }) => f.status === 'failed')
    expect(failed).toHaveLength(1)
    expect(failed[0].error.code).toBe('MEGAOPTIM_DOWNLOAD')
    expect(readFileSync(join(out, failed[0].file)).equals(readFileSync(join(dir, failed[0].file)))).toBe(true)
    expect(listFiles(out)).toHaveLength(4)
    expect(listFiles(out).some((f) => f.endsWith('.tmp'))).toBe(false)
    expect(cli.err()).toContain(`${failed[0].file}: MEGAOPTIM_DOWNLOAD`)
  })

  test('455 in the middle: the images not optimized are copied unchanged; nothing is lost', async () => {
    const api = await fake({ tokens: 1 })
    const dir = makeTree()
    const out = join(dir, 'out')
    const code = await runOptimize([dir, '--out', out, '--endpoint', api.endpoint, '--rate-limit', '6000'], io())
    expect(code).toBe(1)
    for (const f of ['horse.png', 'sub/rocket.JPG', 'sub/deeper/anim.gif', 'sub/deeper/text one.png']) {
      expect(readFileSync(join(out, f)).equals(readFileSync(join(dir, f)))).toBe(true)
    }
    expect(api.of('optimize')).toHaveLength(1)
  })

  test('--in-place replaces only what got smaller and leaves failures untouched', async () => {
    const api = await fake({ noGain: (name) => name === 'anim.gif' })
    api.inject('download', { kind: 'download404' })
    const dir = makeTree()
    const before = Object.fromEntries(listFiles(dir).map((f) => [f, readFileSync(join(dir, f))]))
    const report = join(tmpdir(), `megaoptim-report-${process.pid}.json`)
    const code = await runOptimize([dir, '--in-place', '--endpoint', api.endpoint, '--report', report, '--rate-limit', '6000', '--compression', 'lossless', '--keep-exif', '--no-cmyk-to-rgb', '--max-width', '800', '--max-height', '600'], io())
    expect(code).toBe(1)
    expect(api.of('optimize')[0]!.fields).toMatchObject({ compression: 'lossless', keep_exif: '1', cmyktorgb: '0', max_width: '800', max_height: '600' })
    const json = JSON.parse(readFileSync(report, 'utf8'))
    for (const f of json.files as Array<{ file: string; status: string }>) {
      const now = readFileSync(join(dir, f.file))
      if (f.status === 'optimized') expect(now.length).toBeLessThan(before[f.file]!.length)
      else expect(now.equals(before[f.file]!)).toBe(true)
    }
    expect(json.files.map((f: { status: string }) => f.status).sort()).toEqual(['failed', 'no-gain', 'optimized', 'optimized'])
    expect(listFiles(dir)).toEqual(Object.keys(before).sort())
  })

  test.each([
    [['DIR'], /pass --out <dir> to write elsewhere, or --in-place/],
    [['DIR', '--out', 'x', '--in-place'], /either --out <dir> or --in-place, not both/],
    [['DIR', '--in-place', '--max-width', 'wide'], /--max-width must be a whole number >= 0, got "wide"/],
    [['DIR', '--in-place', '--compression', 'lossy'], /--compression must be intelligent, ultra or lossless, got "lossy"/],
    [['DIR', '--in-place', '--bogus'], /Unknown option '--bogus'/],
    [['/no/such/folder', '--in-place'], /\/no\/such\/folder is not a folder/],
    [[], /expected one folder, got none/],
  ])('usage error %j exits 2 with a precise message', async (argv, message) => {
    const dir = makeTree()
    const cli = io()
    expect(await runOptimize(argv.map((a) => (a === 'DIR' ? dir : a)), cli)).toBe(2)
    expect(cli.err()).toMatch(message)
  })

  test('without MEGAOPTIM_API_KEY and with --endpoint, it explains how to set the key', async () => {
    const cli = io({})
    expect(await runOptimize([makeTree(), '--in-place', '--endpoint', 'http://127.0.0.1:9/v1'], cli)).toBe(2)
    expect(cli.err()).toMatch(/no API key.*export MEGAOPTIM_API_KEY=/s)
  })

  test('without MEGAOPTIM_API_KEY and without --endpoint, the embedded server optimizes locally', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'megaoptim-cli-embedded-'))
    cpSync(join(FIXTURES, 'horse.png'), join(dir, 'horse.png'))
    cpSync(join(FIXTURES, 'truncated.jpg'), join(dir, 'truncated.jpg'))
    const cli = io({})
    const code = await runOptimize([dir, '--out', join(dir, 'out')], cli)
    expect(cli.err()).toContain('MEGAOPTIM_API_KEY is not set: optimizing locally with the embedded compatible server')
    expect(code).toBe(0)
    expect(cli.out()).toMatch(/2 files: 1 optimized, 1 without gain, 0 failed/)
    expect(readFileSync(join(dir, 'out', 'horse.png')).length).toBeLessThan(readFileSync(join(dir, 'horse.png')).length)
    expect(readFileSync(join(dir, 'out', 'truncated.jpg')).equals(readFileSync(join(dir, 'truncated.jpg')))).toBe(true)
  })

  test('the real command line: npx tsx src/cli.ts optimize, exit code 0 and a summary', async () => {
    const api = await fake()
    const dir = makeTree()
    const out = join(dir, 'out')
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'optimize', dir, '--out', out, '--endpoint', api.endpoint, '--rate-limit', '6000'], {
      env: { ...process.env, MEGAOPTIM_API_KEY: KEY },
    })
    expect(stdout).toMatch(/4 files: 4 optimized/)
    expect(existsSync(join(out, 'sub/deeper/text one.png'))).toBe(true)
  })
})

describe('megaoptim info', () => {
  test('prints the account name, email and tokens', async () => {
    const api = await fake({ tokens: 1234 })
    const cli = io()
    expect(await runInfo(['--endpoint', api.endpoint], cli)).toBe(0)
    expect(cli.out()).toBe('name:   Fake User\nemail:  fake@example.test\ntokens: 1234\n')
    const json = io()
    expect(await runInfo(['--endpoint', api.endpoint, '--json'], json)).toBe(0)
    expect(JSON.parse(json.out())).toEqual({ name: 'Fake User', email: 'fake@example.test', tokens: 1234 })
  })

  test('a wrong key exits 1 with the reason and the fix, never the key', async () => {
    const api = await fake()
    const cli = io({ MEGAOPTIM_API_KEY: 'WRONGkey0123456789abcdefghijklmn' })
    expect(await runInfo(['--endpoint', api.endpoint], cli)).toBe(1)
    expect(cli.err()).toMatch(/MEGAOPTIM_AUTH: .*does not know this API key.*MEGAOPTIM_API_KEY/)
    expect(cli.err()).not.toContain('WRONGkey')
  })

  test('no key: exit 2 and how to set it', async () => {
    const cli = io({})
    expect(await runInfo([], cli)).toBe(2)
    expect(cli.err()).toContain('MEGAOPTIM_API_KEY')
  })
})

describe('progress', () => {
  test('a TTY gets a progress bar on stderr that ends on a fresh line; a pipe gets none', async () => {
    const api = await fake()
    const dir = makeTree()
    const tty = io()
    tty.stderr.isTTY = true
    expect(await runOptimize([dir, '--out', join(dir, 'o1'), '--endpoint', api.endpoint, '--rate-limit', '6000'], tty)).toBe(0)
    expect(tty.err().startsWith('\r[')).toBe(true)
    expect(tty.err().endsWith(`[${'#'.repeat(40)}] 4/4 images\u001b[K\n`)).toBe(true)
    const pipe = io()
    expect(await runOptimize([dir, '--out', join(dir, 'o2'), '--endpoint', api.endpoint, '--rate-limit', '6000'], pipe)).toBe(0)
    expect(pipe.err()).toBe('')
  })
})
