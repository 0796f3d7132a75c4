/**
 * `megaoptim optimize` end to end, against the real compatible server on loopback (or the embedded one):
 * real files, real output trees, the shared cache and report, exit codes. One test spawns the real
 * command line through tsx.
 */
import { execFile } from 'node:child_process'
import { type Dirent, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest'
import { run as runOptimize } from '../../src/cli/optimize.ts'
import type { CliIo } from '../../src/cli/shared-client.ts'
import type { ReportJson } from '../../src/core/report-json.ts'
import type { MegaOptimServerHandle } from '../../src/server.ts'
import { startApiServer } from '../e2e/api-server.ts'
import { FIXTURES } from '../client/_fixtures.ts'

const SVG = join(FIXTURES, '../app/src/images/badge.svg')
let server: MegaOptimServerHandle
let apiKey: string
beforeAll(async () => {
  ;({ server, apiKey } = await startApiServer())
})
afterAll(async () => {
  await server?.close()
})

function io(env: NodeJS.ProcessEnv, cwd = tmpdir()): CliIo & { out: () => string; err: () => string } {
  let out = ''
  let err = ''
  return {
    env,
    cwd,
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t), isTTY: false },
    out: () => out,
    err: () => err,
  }
}

const withKey = () => io({ MEGAOPTIM_API_KEY: apiKey })
const temp = (prefix: string) => mkdtempSync(join(tmpdir(), `megaoptim-cli-${prefix}-`))

/** Images at three levels, every format the plugin takes, and files it does not. */
async function makeTree(): Promise<string> {
  const dir = temp('tree')
  mkdirSync(join(dir, 'sub', 'deeper'), { recursive: true })
  cpSync(join(FIXTURES, 'horse.png'), join(dir, 'horse.png'))
  cpSync(join(FIXTURES, 'rocket.jpg'), join(dir, 'sub', 'rocket.JPG'))
  cpSync(join(FIXTURES, 'no_time_for_that_tiny.gif'), join(dir, 'sub', 'deeper', 'anim.gif'))
  cpSync(join(FIXTURES, 'text.png'), join(dir, 'sub', 'deeper', 'text one.png'))
  cpSync(SVG, join(dir, 'badge.svg'))
  writeFileSync(join(dir, 'photo.webp'), await sharp(join(FIXTURES, 'chelsea.png')).webp({ quality: 100 }).toBuffer())
  writeFileSync(join(dir, 'notes.txt'), 'not an image')
  writeFileSync(join(dir, 'sub', 'data.json'), '{}')
  return dir
}

function listFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort()
}

function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(listFiles(dir).map((f) => [f, readFileSync(join(dir, f)).toString('base64')]))
}

const requests = () => server.stats.totalRequests
const readReport = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as ReportJson

describe('megaoptim optimize', () => {
  test('--out: every file arrives; rasters and WebP optimized, SVG by svgo, the rest copied; the shared report', async () => {
    const dir = await makeTree()
    const out = join(temp('out'), 'out')
    const report = join(temp('report'), 'report.json')
    const cli = withKey()
    const code = await runOptimize([dir, '--out', out, '--endpoint', server.endpoint, '--compression', 'lossless', '--cache', join(temp('cache'), 'c'), '--report', report], cli)
    expect(cli.err()).toBe('')
    expect(code).toBe(0)
    expect(listFiles(out)).toEqual(listFiles(dir))
    expect(readFileSync(join(out, 'notes.txt'), 'utf8')).toBe('not an image')
    for (const file of ['horse.png', 'badge.svg']) expect(readFileSync(join(out, file)).length).toBeLessThan(readFileSync(join(dir, file)).length)
    const json = readReport(report)
    expect(json.version).toBe(1)
    expect(json.backend).toBe('self-hosted')
    expect(Object.keys(json.totals)).toEqual(expect.arrayContaining(['files', 'originalBytes', 'optimizedBytes', 'cacheHits', 'requests', 'tokensUsed', 'tokensLeft']))
    expect(json.totals).toMatchObject({ files: 6, failed: 0, cacheHits: 0, tokensLeft: null })
    expect(json.totals.requests).toBeGreaterThan(0)
    expect(json.files.map((f) => f.file)).toEqual(['badge.svg', 'horse.png', 'photo.webp', 'sub/deeper/anim.gif', 'sub/deeper/text one.png', 'sub/rocket.JPG'])
    expect(json.files.find((f) => f.file === 'badge.svg')).toMatchObject({ status: 'optimized', error: null })
    expect(cli.out()).toMatch(/2 other files copied unchanged/)
    for (const text of [cli.out(), cli.err(), readFileSync(report, 'utf8')]) expect(text).not.toContain(apiKey)
  })

  test('--in-place twice: the second run makes zero requests and changes no byte', async () => {
    const dir = await makeTree()
    const cache = join(temp('cache'), 'c')
    const argv = [dir, '--in-place', '--webp', '--endpoint', server.endpoint, '--cache', cache, '--report', join(cache, '..', 'r.json')]
    const original = snapshot(dir)
    expect(await runOptimize(argv, withKey())).toBe(0)
    const once = snapshot(dir)
    expect(once).not.toEqual(original)
    expect(Object.keys(once).filter((f) => f.endsWith('.webp.webp'))).toEqual([])
    expect(Object.keys(once).some((f) => f.endsWith('.png.webp'))).toBe(true)

    const before = requests()
    const second = withKey()
    expect(await runOptimize(argv, second)).toBe(0)
    expect(requests() - before).toBe(0)
    expect(snapshot(dir)).toEqual(once)
    const json = readReport(join(cache, '..', 'r.json'))
    expect(json.totals.requests).toBe(0)
    expect(json.totals.cacheHits).toBe(json.totals.files)
    expect(json.files.every((f) => f.status !== 'failed')).toBe(true)
  })

  test('MEGAOPTIM_API_KEY= (empty) uses the embedded engine, says so in one line, and a second run sends nothing', async () => {
    const dir = temp('embedded')
    cpSync(join(FIXTURES, 'horse.png'), join(dir, 'horse.png'))
    const cache = join(temp('cache'), 'c')
    const report = join(cache, '..', 'r.json')
    const first = io({ MEGAOPTIM_API_KEY: '' })
    expect(await runOptimize([dir, '--in-place', '--compression', 'lossless', '--cache', cache, '--report', report], first)).toBe(0)
    expect(first.out().split('\n').filter((l) => /embedded engine/.test(l))).toEqual([
      expect.stringMatching(/^\[megaoptim\] the API key is empty: optimizing with the embedded engine at http:\/\/127\.0\.0\.1:\d+\/v1/),
    ])
    expect(readReport(report).totals.requests).toBeGreaterThan(0)
    const once = snapshot(dir)
    const second = io({ MEGAOPTIM_API_KEY: '' })
    expect(await runOptimize([dir, '--in-place', '--compression', 'lossless', '--cache', cache, '--report', report], second)).toBe(0)
    expect(snapshot(dir)).toEqual(once)
    expect(readReport(report).totals).toMatchObject({ requests: 0, cacheHits: 1 })
    // Nothing to send: the embedded engine is not even started.
    expect(second.out()).not.toMatch(/embedded engine/)
  })

  test('a truncated JPEG fails as in the plugin: its original is kept and the exit code is 1', async () => {
    const dir = temp('truncated')
    cpSync(join(FIXTURES, 'truncated.jpg'), join(dir, 'truncated.jpg'))
    cpSync(SVG, join(dir, 'badge.svg'))
    const out = join(dir, 'out')
    const cli = withKey()
    const requestsBefore = requests()
    const code = await runOptimize([dir, '--out', out, '--endpoint', server.endpoint, '--no-cache', '--report', join(out, '..', 'r.json')], cli)
    expect(code).toBe(1)
    expect(readFileSync(join(out, 'truncated.jpg')).equals(readFileSync(join(dir, 'truncated.jpg')))).toBe(true)
    expect(readReport(join(out, '..', 'r.json')).files.find((f) => f.file === 'truncated.jpg')).toMatchObject({ status: 'failed', error: expect.stringMatching(/truncated|cut short|ends/i) })
    expect(cli.err()).toMatch(/truncated\.jpg/)
    expect(requests() - requestsBefore).toBe(0)
  })

  test('an account out of tokens: every image keeps its original in the output, exit 1', async () => {
    const { apiKey: poor } = await server.createAccount({ name: 'poor', email: 'poor@example.com', tokens: 1 })
    const dir = await makeTree()
    const out = join(temp('out'), 'out')
    const code = await runOptimize([dir, '--out', out, '--endpoint', server.endpoint, '--no-cache'], io({ MEGAOPTIM_API_KEY: poor }))
    expect(code).toBe(1)
    expect(listFiles(out)).toEqual(listFiles(dir))
    for (const f of ['horse.png', 'sub/rocket.JPG', 'sub/deeper/anim.gif', 'sub/deeper/text one.png']) {
      expect(readFileSync(join(out, f)).equals(readFileSync(join(dir, f)))).toBe(true)
    }
  })

  test('the cache lives in the project around the working directory, else in the user cache folder; --no-cache uses none', async () => {
    const project = temp('project')
    writeFileSync(join(project, 'package.json'), '{"name":"p"}')
    const images = join(project, 'images')
    mkdirSync(images)
    cpSync(SVG, join(images, 'badge.svg'))
    expect(await runOptimize(['images', '--out', 'dist'], io({}, project))).toBe(0)
    expect(readdirSync(join(project, 'node_modules', '.cache', 'unplugin-megaoptim')).length).toBeGreaterThan(0)

    const loose = temp('loose')
    cpSync(SVG, join(loose, 'badge.svg'))
    const xdg = temp('xdg')
    vi.stubEnv('XDG_CACHE_HOME', xdg)
    try {
      expect(await runOptimize([loose, '--in-place'], io({}, loose))).toBe(0)
      expect(readdirSync(join(xdg, 'unplugin-megaoptim')).length).toBeGreaterThan(0)
      const bare = temp('bare')
      cpSync(SVG, join(bare, 'badge.svg'))
      const xdg2 = temp('xdg2')
      vi.stubEnv('XDG_CACHE_HOME', xdg2)
      expect(await runOptimize([bare, '--in-place', '--no-cache'], io({}, bare))).toBe(0)
      expect(readdirSync(xdg2)).toEqual([])
    } finally {
      vi.unstubAllEnvs()
    }
  })

  test('a malformed key is refused before any request, without echoing it', async () => {
    const before = requests()
    for (const [key, endpoint] of [['abc 123', server.endpoint], ['short', undefined]] as const) {
      const cli = io({ MEGAOPTIM_API_KEY: key })
      expect(await runOptimize([await makeTree(), '--in-place', ...(endpoint ? ['--endpoint', endpoint] : [])], cli)).toBe(2)
      expect(cli.err()).toMatch(/MEGAOPTIM_API_KEY is not a valid API key/)
      expect(cli.err()).not.toContain(key)
    }
    expect(requests() - before).toBe(0)
  })

  test.each([
    [['DIR'], /pass --out <dir> to write elsewhere, or --in-place/],
    [['DIR', '--out', 'x', '--in-place'], /either --out <dir> or --in-place, not both/],
    [['DIR', '--in-place', '--cache', 'c', '--no-cache'], /either --cache <dir> or --no-cache, not both/],
    [['DIR', '--in-place', '--max-width', 'wide'], /--max-width must be a whole number >= 0, got "wide"/],
    [['DIR', '--in-place', '--compression', 'lossy'], /--compression must be intelligent, ultra or lossless, got "lossy"/],
    [['DIR', '--in-place', '--bogus'], /Unknown option '--bogus'/],
    [['/no/such/folder', '--in-place'], /\/no\/such\/folder is not a folder/],
    [[], /expected one folder, got none/],
  ])('usage error %j exits 2 with a precise message', async (argv, message) => {
    const dir = await makeTree()
    const cli = withKey()
    expect(await runOptimize(argv.map((a) => (a === 'DIR' ? dir : a)), cli)).toBe(2)
    expect(cli.err()).toMatch(message)
  })

  test('without MEGAOPTIM_API_KEY and with --endpoint, it explains how to set the key', async () => {
    const cli = io({})
    expect(await runOptimize([await makeTree(), '--in-place', '--endpoint', 'http://127.0.0.1:9/v1'], cli)).toBe(2)
    expect(cli.err()).toMatch(/no API key.*export MEGAOPTIM_API_KEY=/s)
  })

  test('the real command line: node --import tsx src/cli.ts optimize, exit code 0', async () => {
    const dir = await makeTree()
    const out = join(dir, 'out')
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'optimize', dir, '--out', out, '--endpoint', server.endpoint, '--no-cache'], {
      env: { ...process.env, MEGAOPTIM_API_KEY: apiKey },
    })
    expect(stdout).toMatch(/6 images:/)
    expect(existsSync(join(out, 'sub/deeper/text one.png'))).toBe(true)
  })

  test('a TTY gets a progress bar on stderr that ends on a fresh line; a pipe gets none', async () => {
    const dir = await makeTree()
    const tty = withKey()
    tty.stderr.isTTY = true
    expect(await runOptimize([dir, '--out', join(dir, 'o1'), '--endpoint', server.endpoint, '--no-cache'], tty)).toBe(0)
    expect(tty.err().startsWith('\r[')).toBe(true)
    expect(tty.err().endsWith(`[${'#'.repeat(40)}] 6/6 images\u001b[K\n`)).toBe(true)
    const pipe = withKey()
    expect(await runOptimize([dir, '--out', join(dir, 'o2'), '--endpoint', server.endpoint, '--no-cache'], pipe)).toBe(0)
    expect(pipe.err()).toBe('')
  })
})
