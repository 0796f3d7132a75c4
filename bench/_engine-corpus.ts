/**
 * The engine's wide corpus: the kinds ../shared/corpus lacks (photos of 8+ megapixels saved as 4:4:4
 * JPEGs with saturated detail, PNG wallpapers of large smooth gradients, alpha, screenshots with small
 * text, generated gradients). Built at benchmark time from Debian's `ukui-wallpapers` and
 * `lomiri-wallpapers` (apt-get download + dpkg-deb -x; GPL/CC artwork) plus sharp and Debian's chromium,
 * cached outside the repository ($ENGINE_WIDE_CORPUS or ~/.cache/megaoptim-bench/engine-wide-v1).
 * Debian's mate-backgrounds, gnome-backgrounds and desktop-base are NOT used: they are kept for
 * independent checks.
 *
 * Every image is in one half: `tune` (what the engine's limits and heuristics were tuned on) or `held`
 * (held back: only reported on). The bench prints both.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import sharp, { type Sharp } from 'sharp'

export type Half = 'tune' | 'held'
export interface WideImage {
  name: string
  half: Half
  kind: string
  file: string
}

/** ../shared/corpus, beside the project (a worktree one level deeper finds it too). */
export const SHARED_CORPUS =
  [join(import.meta.dirname, '../../shared/corpus/'), join(import.meta.dirname, '../../../shared/corpus/')].find((d) => existsSync(d)) ??
  join(import.meta.dirname, '../../shared/corpus/')

const DIR = process.env.ENGINE_WIDE_CORPUS ?? join(homedir(), '.cache', 'megaoptim-bench', 'engine-wide-v1')
const WEB_WIDTH = 1600

type Make = (src: (file: string) => string) => Promise<Buffer>
interface Recipe {
  name: string
  half: Half
  kind: string
  make: Make
}

const wall = (src: (f: string) => string, file: string, width = WEB_WIDTH): Sharp =>
  sharp(src(file)).resize({ width, withoutEnlargement: true })

const RECIPES: Recipe[] = [
  // Photos / renders of 8+ MP, as shipped (4:4:4 JPEGs with saturated colour edges).
  { name: 'rhythm-9mp-444.jpg', half: 'held', kind: '9.2 MP photo, JPEG 4:4:4 q~98', make: async (s) => readFileSync(s('rhythm.jpg')) },
  { name: '2004default-9mp-444.jpg', half: 'tune', kind: '9.2 MP render, JPEG 4:4:4', make: async (s) => readFileSync(s('2004default.jpg')) },
  // Web-sized, re-saved the way such sources often arrive.
  { name: 'string-q99-444.jpg', half: 'tune', kind: 'saturated detail, JPEG q99 4:4:4', make: (s) => wall(s, 'string.jpg').jpeg({ quality: 99, chromaSubsampling: '4:4:4' }).toBuffer() },
  { name: 'mouse-q95-444.jpg', half: 'held', kind: 'dark, saturated glow, JPEG q95 4:4:4', make: (s) => wall(s, 'the-mouse.jpg').jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toBuffer() },
  { name: 'goldfish-q97-444.jpg', half: 'held', kind: 'saturated edges, JPEG q97 4:4:4', make: (s) => wall(s, 'goldfish.png').flatten().jpeg({ quality: 97, chromaSubsampling: '4:4:4' }).toBuffer() },
  { name: 'firstgeneration-q92.jpg', half: 'tune', kind: 'illustration, JPEG q92 4:2:0', make: (s) => wall(s, 'firstgeneration.jpg').jpeg({ quality: 92 }).toBuffer() },
  // PNG wallpapers: large smooth gradients (the palette-banding case).
  { name: 'fluent-color.png', half: 'held', kind: 'smooth gradient wallpaper, PNG', make: (s) => wall(s, 'fluent-color.png').png().toBuffer() },
  { name: 'warty-final.png', half: 'tune', kind: 'smooth gradient wallpaper, PNG', make: (s) => wall(s, 'warty-final-ubuntu.png').png().toBuffer() },
  { name: 'focal.png', half: 'held', kind: 'dark gradient + small detail, PNG', make: (s) => wall(s, 'focal-ubuntukylin.png').png().toBuffer() },
  { name: 'calla.png', half: 'tune', kind: 'gradient wallpaper, PNG', make: (s) => wall(s, 'calla.png').png().toBuffer() },
  { name: 'city.png', half: 'tune', kind: 'flat vector art, PNG', make: (s) => wall(s, 'city.png').png().toBuffer() },
  { name: 'rollpaper.png', half: 'held', kind: 'flat vector art, PNG', make: (s) => wall(s, 'rollpaper.png').png().toBuffer() },
  // Alpha: a soft (radial) mask and a hard-edged one.
  { name: 'goldfish-soft-alpha.png', half: 'tune', kind: 'soft alpha over a gradient, PNG', make: (s) => withMask(wall(s, 'goldfish.png', 1200), softMask) },
  { name: 'desert-card-alpha.png', half: 'held', kind: 'hard alpha edges (rounded card), PNG', make: (s) => withMask(wall(s, 'desert.png', 1200), cardMask) },
  // Generated gradients (8-bit, undithered): the worst case for a palette.
  { name: 'gradient-radial.png', half: 'tune', kind: 'generated radial gradient, PNG', make: () => gradient('radial', 1920, 1080) },
  { name: 'gradient-dark.png', half: 'held', kind: 'generated dark linear gradient, PNG', make: () => gradient('dark', 1920, 1080) },
  // Screenshots with small text (chromium).
  { name: 'screenshot-light.png', half: 'tune', kind: 'UI screenshot, small text, PNG', make: () => screenshot('light') },
  { name: 'screenshot-dark.png', half: 'held', kind: 'UI screenshot, small coloured text, PNG', make: () => screenshot('dark') },
  { name: 'screenshot-code-444.jpg', half: 'held', kind: 'screenshot saved as JPEG q95 4:4:4', make: async () => sharp(await screenshot('dark')).flatten().jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toBuffer() },
  { name: 'screenshot-light-444.jpg', half: 'tune', kind: 'screenshot saved as JPEG q92 4:4:4', make: async () => sharp(await screenshot('light')).flatten().jpeg({ quality: 92, chromaSubsampling: '4:4:4' }).toBuffer() },
]

/** The wide corpus, built on first use (needs apt-get, dpkg-deb and chromium; ~25 MB download). */
export async function wideCorpus(): Promise<WideImage[]> {
  mkdirSync(DIR, { recursive: true })
  const missing = RECIPES.filter((r) => !existsSync(join(DIR, r.name)))
  if (missing.length > 0) {
    const extracted = join(DIR, 'debian')
    if (!existsSync(join(extracted, 'usr/share/backgrounds/rhythm.jpg'))) fetchDebian(extracted)
    const src = (f: string): string => join(extracted, 'usr/share/backgrounds', f)
    for (const r of missing) {
      console.log(`wide corpus: making ${r.name}`)
      writeFileSync(join(DIR, r.name), await r.make(src))
    }
  }
  return RECIPES.map((r) => ({ name: r.name, half: r.half, kind: r.kind, file: join(DIR, r.name) }))
}

function fetchDebian(into: string): void {
  const work = mkdtempSync(join(tmpdir(), 'engine-corpus-'))
  try {
    execFileSync('apt-get', ['download', 'ukui-wallpapers', 'lomiri-wallpapers'], { cwd: work, stdio: 'inherit' })
    mkdirSync(into, { recursive: true })
    for (const deb of readdirSync(work).filter((f) => f.endsWith('.deb'))) execFileSync('dpkg-deb', ['-x', join(work, deb), into])
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

const softMask = (w: number, h: number): string =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><defs><radialGradient id="g"><stop offset="0.35" stop-color="#fff" stop-opacity="1"/><stop offset="1" stop-color="#fff" stop-opacity="0"/></radialGradient></defs><ellipse cx="${w / 2}" cy="${h / 2}" rx="${w / 2}" ry="${h / 2}" fill="url(#g)"/></svg>`
const cardMask = (w: number, h: number): string =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><rect x="40" y="40" width="${w - 80}" height="${h - 80}" rx="48" fill="#fff"/><circle cx="${w - 40}" cy="40" r="36" fill="#fff"/></svg>`

async function withMask(image: Sharp, mask: (w: number, h: number) => string): Promise<Buffer> {
  const { data, info } = await image.removeAlpha().toBuffer({ resolveWithObject: true })
  const svg = Buffer.from(mask(info.width, info.height))
  return sharp(data).ensureAlpha().composite([{ input: svg, blend: 'dest-in' }]).png().toBuffer()
}

async function gradient(kind: 'radial' | 'dark', w: number, h: number): Promise<Buffer> {
  const body =
    kind === 'radial'
      ? `<defs><radialGradient id="g" cx="0.3" cy="0.35" r="0.9"><stop offset="0" stop-color="#ffd9a0"/><stop offset="0.45" stop-color="#e0607e"/><stop offset="1" stop-color="#2b2f77"/></radialGradient></defs><rect width="${w}" height="${h}" fill="url(#g)"/>`
      : `<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#05070d"/><stop offset="0.6" stop-color="#1b2440"/><stop offset="1" stop-color="#3a2a4a"/></linearGradient></defs><rect width="${w}" height="${h}" fill="url(#g)"/>`
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${body}</svg>`
  return sharp(Buffer.from(svg)).removeAlpha().png().toBuffer()
}

const shots = new Map<string, Buffer>()
/** A settings page rendered by chromium at 1600x1000: 11-13 px text, coloured badges, syntax-coloured code. */
async function screenshot(theme: 'light' | 'dark'): Promise<Buffer> {
  const cached = shots.get(theme)
  if (cached) return cached
  const dark = theme === 'dark'
  const rows = Array.from({ length: 28 }, (_, i) => {
    const colour = ['#d73a49', '#22863a', '#005cc5', '#e36209', '#6f42c1'][i % 5]
    return `<tr><td>item-${i}.png</td><td><span class="b" style="background:${colour}">${['new', 'ok', 'cached', 'warn', 'lossy'][i % 5]}</span></td><td>${(i * 7919) % 100000} B</td><td><code><span style="color:${colour}">const</span> x${i} = optimize(<span style="color:#0a8">'img-${i}'</span>, { level: ${i % 3} })</code></td></tr>`
  }).join('')
  const html = `<!doctype html><html><head><style>
  body{margin:0;font:12px/1.35 sans-serif;background:${dark ? '#0d1117' : '#f6f8fa'};color:${dark ? '#c9d1d9' : '#24292f'}}
  header{background:${dark ? '#161b22' : '#fff'};padding:10px 16px;border-bottom:1px solid #8884;font-size:14px}
  nav{float:left;width:220px;padding:12px;font-size:11px} nav a{display:block;color:${dark ? '#58a6ff' : '#0969da'};padding:3px 0}
  main{margin-left:250px;padding:12px} table{border-collapse:collapse;width:100%;font-size:11px}
  td{border-bottom:1px solid #8883;padding:3px 6px} .b{color:#fff;border-radius:8px;padding:1px 6px;font-size:10px}
  code{font:11px monospace} h1{font-size:18px;margin:4px 0 10px}
  .card{display:inline-block;width:230px;height:90px;margin:6px;border-radius:8px;background:linear-gradient(135deg,#ff5f6d,#ffc371)}
  </style></head><body><header><b>megaoptim</b> · Settings · Images</header><nav>${Array.from({ length: 30 }, (_, i) => `<a>Section ${i} — options and limits</a>`).join('')}</nav>
  <main><h1>Optimized images</h1><div class="card"></div><div class="card" style="background:linear-gradient(135deg,#4facfe,#00f2fe)"></div><div class="card" style="background:linear-gradient(135deg,#43e97b,#38f9d7)"></div><table>${rows}</table></main></body></html>`
  const dir = mkdtempSync(join(tmpdir(), 'engine-shot-'))
  try {
    writeFileSync(join(dir, 'page.html'), html)
    const out = join(dir, 'shot.png')
    execFileSync(
      'chromium',
      ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--screenshot=${out}`, '--window-size=1600,1000', `file://${join(dir, 'page.html')}`],
      { stdio: 'ignore', timeout: 120_000 },
    )
    const png = await sharp(out).removeAlpha().png().toBuffer()
    shots.set(theme, png)
    return png
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
