/**
 * The large app of `npm run bench -- large-app`, assembled at benchmark time from public Debian packages
 * (fetched with `apt-get download`, unpacked with `dpkg-deb -x`) into ~/.cache/unplugin-megaoptim-bench:
 * nothing of it is committed.
 *
 * - photos: Plasma's photographic wallpapers, full size and as thumbnails (plasma-workspace-wallpapers);
 * - large wallpapers and flat illustrations, PNG with alpha and JPEG at 4:4:4 (ukui-wallpapers,
 *   lomiri-wallpapers, Plasma's PNG wallpapers);
 * - screenshots with small text (gnumeric-doc's manual figures);
 * - flat UI icons with alpha (tango-icon-theme);
 * - glTF / three.js / Poly Haven / ambientCG style texture sets: a base colour cropped from a photo and the
 *   data maps (normal, roughness, metallic, height, displacement, occlusion, ORM/ARM) computed from it, named
 *   as those exports name them.
 * Imported from JS, CSS and HTML, and placed in `public/`. Not used: mate-backgrounds, gnome-backgrounds,
 * desktop-base (kept for independent checks).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import sharp from 'sharp'
import { isDataTextureName } from '../src/core/textures.ts'

/** Bump when the app's content changes, so a stale cached app is rebuilt. */
const APP_VERSION = 3
const PACKAGES = ['plasma-workspace-wallpapers', 'ukui-wallpapers', 'lomiri-wallpapers', 'gnumeric-doc', 'tango-icon-theme']

export const BENCH_CACHE = process.env.MEGAOPTIM_BENCH_CACHE ?? join(homedir(), '.cache', 'unplugin-megaoptim-bench')

/** Downloads and unpacks each package once; returns the directory holding the unpacked trees. */
function unpackedPackages(): string {
  const debs = join(BENCH_CACHE, 'debs')
  const trees = join(BENCH_CACHE, 'unpacked')
  mkdirSync(debs, { recursive: true })
  mkdirSync(trees, { recursive: true })
  for (const name of PACKAGES) {
    const tree = join(trees, name)
    if (existsSync(tree)) continue
    const have = () => readdirSync(debs).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'))
    if (!have()) {
      try {
        execFileSync('apt-get', ['download', name], { cwd: debs, stdio: ['ignore', 'ignore', 'pipe'] })
      } catch (error) {
        throw new Error(
          `could not fetch the Debian package ${name} (${(error as Error).message.split('\n')[0]}); ` +
            'run `apt-get update` once, or put its .deb in ' + debs,
        )
      }
    }
    execFileSync('dpkg-deb', ['-x', join(debs, have()!), tree])
  }
  return trees
}

interface Entry {
  /** Path inside the app. */
  to: string
  from?: string
  /** Bytes made here (texture maps). */
  data?: Buffer
}

const PHOTOS = ['BytheWater', 'ColdRipple', 'ColorfulCups', 'DarkestHour', 'EveningGlow', 'FallenLeaf', 'Grey', 'Kite', 'OneStandsOut', 'Path', 'summer_1am']

/** A 1024-pixel (or `size`) square base colour and the data maps of a material, derived from a photo. */
async function material(photo: string, size: number) {
  const base = sharp(photo).resize(size, size, { fit: 'cover' })
  const color = await base.clone().jpeg({ quality: 92 }).toBuffer()
  const height = await base.clone().greyscale().blur(1.2).raw().toBuffer()
  const normal = Buffer.alloc(size * size * 3)
  const at = (x: number, y: number) => height[Math.min(size - 1, Math.max(0, y)) * size + Math.min(size - 1, Math.max(0, x))]! / 255
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      // Sobel gradients of the height field; OpenGL convention (green up), as glTF wants.
      const dx = at(x + 1, y - 1) + 2 * at(x + 1, y) + at(x + 1, y + 1) - at(x - 1, y - 1) - 2 * at(x - 1, y) - at(x - 1, y + 1)
      const dy = at(x - 1, y + 1) + 2 * at(x, y + 1) + at(x + 1, y + 1) - at(x - 1, y - 1) - 2 * at(x, y - 1) - at(x + 1, y - 1)
      const nx = -dx * 2
      const ny = dy * 2
      const len = Math.hypot(nx, ny, 1)
      const i = (y * size + x) * 3
      normal[i] = Math.round(((nx / len) * 0.5 + 0.5) * 255)
      normal[i + 1] = Math.round(((ny / len) * 0.5 + 0.5) * 255)
      normal[i + 2] = Math.round(((1 / len) * 0.5 + 0.5) * 255)
    }
  }
  const grey = { raw: { width: size, height: size, channels: 1 as const } }
  const roughness = await sharp(height, grey).negate().linear(0.6, 70).raw().toBuffer()
  const metallic = await sharp(height, grey).threshold(170).blur(2).raw().toBuffer()
  const occlusion = await sharp(height, grey).blur(12).normalise().linear(0.5, 128).raw().toBuffer()
  const rgb = (r: Buffer, g: Buffer, b: Buffer) => {
    const out = Buffer.alloc(size * size * 3)
    for (let i = 0; i < size * size; i++) {
      out[i * 3] = r[i]!
      out[i * 3 + 1] = g[i]!
      out[i * 3 + 2] = b[i]!
    }
    return sharp(out, { raw: { width: size, height: size, channels: 3 } })
  }
  return {
    color,
    normalPng: await sharp(normal, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer(),
    normalJpg: await sharp(normal, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: 95 }).toBuffer(),
    heightPng: await sharp(height, grey).png().toBuffer(),
    roughnessJpg: await sharp(roughness, grey).jpeg({ quality: 92 }).toBuffer(),
    roughnessPng: await sharp(roughness, grey).png().toBuffer(),
    metallicPng: await sharp(metallic, grey).png().toBuffer(),
    metallicJpg: await sharp(metallic, grey).jpeg({ quality: 92 }).toBuffer(),
    occlusionJpg: await sharp(occlusion, grey).jpeg({ quality: 92 }).toBuffer(),
    occlusionPng: await sharp(occlusion, grey).png().toBuffer(),
    ormPng: await rgb(occlusion, roughness, metallic).png().toBuffer(),
  }
}

async function entries(trees: string): Promise<Entry[]> {
  const plasma = join(trees, 'plasma-workspace-wallpapers', 'usr/share/wallpapers')
  const ukui = join(trees, 'ukui-wallpapers', 'usr/share/backgrounds')
  const list: Entry[] = []
  for (const name of PHOTOS) {
    list.push({ to: `src/photos/${name}.jpg`, from: join(plasma, name, 'contents/images/2560x1600.jpg') })
    // A CMS-style thumbnail (Plasma's smaller sizes are links to the large one).
    const thumb = await sharp(join(plasma, name, 'contents/images/2560x1600.jpg')).resize(800).jpeg({ quality: 88 }).toBuffer()
    list.push({ to: `src/photos/thumbs/${name}-800.jpg`, data: thumb })
  }
  for (const f of ['2004default.jpg', 'the-mouse.jpg', 'goldfish.png']) list.push({ to: `src/wallpapers/${f}`, from: join(ukui, f) })
  for (const f of ['city.png', 'desert.png', 'rollpaper.png']) list.push({ to: `src/art/${f}`, from: join(ukui, f) })
  list.push({ to: 'public/backgrounds/warty-final-ubuntu.png', from: join(trees, 'lomiri-wallpapers', 'usr/share/backgrounds/warty-final-ubuntu.png') })
  for (const name of ['Altai', 'Canopee', 'Cluster', 'Flow', 'Kokkini', 'Opal']) {
    list.push({ to: `public/gallery/${name.toLowerCase()}.png`, from: join(plasma, name, 'contents/screenshot.png') })
  }

  const figures = join(trees, 'gnumeric-doc', 'usr/share/help/C/gnumeric/figures')
  const shots = (await readdir(figures)).filter((f) => f.endsWith('.png')).sort()
  // The largest figures: whole dialogs and windows, with their small text.
  const ranked = await Promise.all(shots.map(async (f) => {
    const m = await sharp(join(figures, f)).metadata()
    return { f, pixels: (m.width ?? 0) * (m.height ?? 0) }
  }))
  for (const { f } of ranked.sort((a, b) => b.pixels - a.pixels || a.f.localeCompare(b.f)).slice(0, 14)) list.push({ to: `src/screens/${f}`, from: join(figures, f) })

  const tango = join(trees, 'tango-icon-theme', 'usr/share/icons/Tango/32x32')
  for (const f of ['actions/document-save.png', 'actions/edit-find.png', 'actions/go-home.png', 'apps/internet-mail.png', 'apps/system-users.png',
    'places/folder.png', 'places/user-trash.png', 'status/weather-few-clouds.png', 'devices/printer.png', 'mimetypes/image-x-generic.png']) {
    list.push({ to: `src/icons/${basename(f)}`, from: join(tango, f) })
  }
  list.push({ to: 'public/favicon.png', from: join(tango, 'apps/internet-web-browser.png') })

  // glTF sample style (imported from JS): baseColor + normal + occlusionRoughnessMetallic.
  const moss = await material(join(plasma, 'OneStandsOut/contents/images/2560x1600.jpg'), 1024)
  list.push({ to: 'src/models/moss/Moss_baseColor.jpg', data: moss.color })
  list.push({ to: 'src/models/moss/Moss_normal.png', data: moss.normalPng })
  list.push({ to: 'src/models/moss/Moss_occlusionRoughnessMetallic.png', data: moss.ormPng })
  // Poly Haven style (in public/, loaded by URL at run time): diff, nor_gl, rough, arm, disp, ao.
  const wood = await material(join(plasma, 'BytheWater/contents/images/2560x1600.jpg'), 1024)
  list.push({ to: 'public/textures/wood_planks_diff_1k.jpg', data: wood.color })
  list.push({ to: 'public/textures/wood_planks_nor_gl_1k.png', data: wood.normalPng })
  list.push({ to: 'public/textures/wood_planks_rough_1k.png', data: wood.roughnessPng })
  list.push({ to: 'public/textures/wood_planks_arm_1k.png', data: wood.ormPng })
  list.push({ to: 'public/textures/wood_planks_disp_1k.png', data: wood.heightPng })
  list.push({ to: 'public/textures/wood_planks_ao_1k.jpg', data: wood.occlusionJpg })
  // ambientCG style (imported from JS).
  const leaves = await material(join(plasma, 'FallenLeaf/contents/images/2560x1600.jpg'), 1024)
  list.push({ to: 'src/textures/Leaves007_1K_Color.jpg', data: leaves.color })
  list.push({ to: 'src/textures/Leaves007_1K_NormalGL.png', data: leaves.normalPng })
  list.push({ to: 'src/textures/Leaves007_1K_Roughness.jpg', data: leaves.roughnessJpg })
  list.push({ to: 'src/textures/Leaves007_1K_Metalness.jpg', data: leaves.metallicJpg })
  list.push({ to: 'src/textures/Leaves007_1K_Displacement.png', data: leaves.heightPng })
  list.push({ to: 'src/textures/Leaves007_1K_AmbientOcclusion.jpg', data: leaves.occlusionJpg })
  // three.js examples style (imported from JS): CupsNormal.jpg, cups_bump, cups_metal.
  const cups = await material(join(plasma, 'ColorfulCups/contents/images/2560x1600.jpg'), 512)
  list.push({ to: 'src/textures/cups_diffuse.jpg', data: cups.color })
  list.push({ to: 'src/textures/CupsNormal.jpg', data: cups.normalJpg })
  list.push({ to: 'src/textures/cups_bump.png', data: cups.heightPng })
  list.push({ to: 'src/textures/cups_metal.png', data: cups.metallicPng })
  return list
}

const ident = (to: string) => `img${to.replace(/[^A-Za-z0-9]/g, '_')}`

/** The app's HTML, JS and CSS: photos, textures and wallpapers from JS; icons and art from CSS; screenshots from HTML. */
function sources(list: Entry[]): Record<string, string> {
  const fromJs = list.filter((e) => /^src\/(photos|wallpapers|models|textures)\//.test(e.to))
  const fromCss = list.filter((e) => /^src\/(icons|art)\//.test(e.to))
  const fromHtml = list.filter((e) => e.to.startsWith('src/screens/'))
  const fromPublic = list.filter((e) => e.to.startsWith('public/'))
  const js = [
    "import './style.css'",
    ...fromJs.map((e) => `import ${ident(e.to)} from './${e.to.slice(4)}'`),
    `const bundled = [${fromJs.map((e) => ident(e.to)).join(', ')}]`,
    `const runtime = ${JSON.stringify(fromPublic.map((e) => `/${e.to.slice(7)}`))}`,
    "const grid = document.querySelector('#grid')",
    'for (const src of [...bundled, ...runtime]) {',
    "  const img = document.createElement('img')",
    '  img.src = src',
    "  img.loading = 'lazy'",
    '  grid.append(img)',
    '}',
  ].join('\n')
  const css = [
    'body { font: 14px system-ui; margin: 0 }',
    ...fromCss.map((e, i) => `.i${i} { background-image: url('./${e.to.slice(4)}'); width: 32px; height: 32px }`),
  ].join('\n')
  const html = [
    '<!doctype html><html><head><meta charset="utf-8"><title>large app</title>',
    '<link rel="icon" href="/favicon.png"></head><body>',
    ...fromCss.map((_, i) => `<span class="i${i}"></span>`),
    ...fromHtml.map((e) => `<figure><img src="/${e.to}" alt=""></figure>`),
    '<div id="grid"></div><script type="module" src="/src/main.js"></script></body></html>',
  ].join('\n')
  return { 'index.html': html, 'src/main.js': js, 'src/style.css': css }
}

/** Returns the app's root, assembling it on the first run. */
export async function largeApp(): Promise<{ root: string; images: number; bytes: number }> {
  const root = join(BENCH_CACHE, `large-app-v${APP_VERSION}`)
  const marker = join(root, '.complete.json')
  if (existsSync(marker)) {
    const { images, bytes } = JSON.parse(await readFile(marker, 'utf8')) as { images: number; bytes: number }
    return { root, images, bytes }
  }
  await rm(root, { recursive: true, force: true })
  const list = await entries(unpackedPackages())
  let bytes = 0
  for (const entry of list) {
    const to = join(root, entry.to)
    await mkdir(dirname(to), { recursive: true })
    if (entry.data) await writeFile(to, entry.data)
    else await copyFile(entry.from!, to)
    bytes += (await stat(to)).size
  }
  for (const [file, text] of Object.entries(sources(list))) await writeFile(join(root, file), text)
  await writeFile(marker, JSON.stringify({ images: list.length, bytes }))
  return { root, images: list.length, bytes }
}

/** The app's pictures: its images less the data maps (which ship losslessly by design), as paths. */
export function largeAppPictures(root: string): string[] {
  return ['src', 'public'].flatMap((dir) =>
    readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
      .map((name) => join(root, dir, name))
      .filter((path) => /\.(png|jpe?g|gif|webp)$/i.test(path) && !isDataTextureName(path)),
  )
}
