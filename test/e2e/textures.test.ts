/**
 * Data textures are not pictures: real Vite and webpack builds on `compression: 'intelligent'` against the
 * real server ship a normal map pixel-identical (yet optimized losslessly) while the photo beside it is
 * compressed lossily; `textures: 'as-images'` makes the same map lossy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { MegaOptimServerHandle } from '../../src/server.ts'
import type { Options } from '../../src/core/options.ts'
import { startApiServer } from './api-server.ts'
import { buildWith, cleanTmp, fileTree, prepareApp, type BundlerName } from './harness.ts'

const PHOTO = path.resolve('test/fixtures/images/chelsea.png')

let server: MegaOptimServerHandle
let apiKey: string

beforeAll(async () => {
  ;({ server, apiKey } = await startApiServer())
})
afterAll(async () => {
  await server?.close()
  await cleanTmp(['textures-'])
})

/**
 * A tangent-space normal map made the way texture tools make one, from the gradients of a photo's
 * luminance, saved uncompressed as many exporters do (so lossless optimization has something to gain).
 */
async function normalMap(): Promise<Buffer> {
  const { default: sharp } = await import('sharp')
  const grey = sharp(PHOTO).greyscale().resize(256, 256, { fit: 'cover' })
  const sobel = (kernel: number[]) => grey.clone().convolve({ width: 3, height: 3, kernel, scale: 4, offset: 128 }).toColourspace('b-w').raw().toBuffer()
  const [dx, dy] = await Promise.all([sobel([-1, 0, 1, -2, 0, 2, -1, 0, 1]), sobel([-1, -2, -1, 0, 0, 0, 1, 2, 1])])
  const rgb = Buffer.alloc(256 * 256 * 3)
  for (let i = 0; i < 256 * 256; i++) {
    const nx = (dx[i]! - 128) / 128
    const ny = (dy[i]! - 128) / 128
    const len = Math.hypot(nx, ny, 1)
    rgb[i * 3] = Math.round((nx / len / 2 + 0.5) * 255)
    rgb[i * 3 + 1] = Math.round((ny / len / 2 + 0.5) * 255)
    rgb[i * 3 + 2] = Math.round((1 / len / 2 + 0.5) * 255)
  }
  return sharp(rgb, { raw: { width: 256, height: 256, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer()
}

async function appWithTextures(label: string): Promise<string> {
  const root = await prepareApp(label)
  await mkdir(path.join(root, 'src/textures'), { recursive: true })
  await writeFile(path.join(root, 'src/textures/Rock_normal.png'), await normalMap())
  await writeFile(path.join(root, 'src/textures/rock_photo.png'), await readFile(PHOTO))
  const main = path.join(root, 'src/main.js')
  const code = await readFile(main, 'utf8')
  await writeFile(main, `import normal from './textures/Rock_normal.png'\nimport photo from './textures/rock_photo.png'\n${code}\nconsole.log(normal, photo)\n`)
  return root
}

async function pixels(file: string): Promise<Buffer> {
  const { default: sharp } = await import('sharp')
  return sharp(file).ensureAlpha().raw().toBuffer()
}

async function emitted(outDir: string, stem: string): Promise<string> {
  const file = (await fileTree(outDir)).find((f) => path.posix.basename(f).startsWith(stem) && f.endsWith('.png'))
  if (!file) throw new Error(`${stem} was not emitted`)
  return path.join(outDir, file)
}

describe.each<BundlerName>(['vite', 'webpack'])('data textures with %s', (bundler) => {
  const options = (extra: Options = {}): Options => ({ apiKey, endpoint: server.endpoint, compression: 'intelligent', cache: false, logLevel: 'warn', ...extra })

  it('ships the normal map pixel-identical but smaller, and the photo beside it lossy', async () => {
    const root = await appWithTextures(`textures-${bundler}`)
    const { outDir } = await buildWith(bundler, root, options())
    const map = await emitted(outDir, 'Rock_normal')
    const source = path.join(root, 'src/textures/Rock_normal.png')
    expect((await readFile(map)).byteLength).toBeLessThan((await readFile(source)).byteLength)
    expect((await pixels(map)).equals(await pixels(source))).toBe(true)

    const photo = await emitted(outDir, 'rock_photo')
    expect((await readFile(photo)).byteLength).toBeLessThan((await readFile(PHOTO)).byteLength)
    expect((await pixels(photo)).equals(await pixels(PHOTO))).toBe(false)
  })

  it("compresses the same map lossily with textures: 'as-images'", async () => {
    const root = await appWithTextures(`textures-${bundler}-as-images`)
    const { outDir } = await buildWith(bundler, root, options({ textures: 'as-images' }))
    const map = await emitted(outDir, 'Rock_normal')
    expect((await pixels(map)).equals(await pixels(path.join(root, 'src/textures/Rock_normal.png')))).toBe(false)
  })
})
