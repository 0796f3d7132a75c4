/**
 * Synthetic flat vector art for calibration studies (`CALIBRATE_CORPUS`, see src/engine/README.md, "Known
 * limits"): curved edges between flat colours, anti-aliased by librsvg, the kind of picture whose palette
 * loses its in-between colours and turns each edge into a staircase. Not from the held-back half.
 * Run: npx tsx bench/_flat-art.ts <dir>
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import sharp from 'sharp'

const W = 1200
const H = 800

/** High-contrast scenes: hills in front of a sky, a sun, a peak. */
const SCENES = [
  ['#6fc0b4', '#f9b94c', '#e0604a', '#3b4a8c', '#fff3c4'],
  ['#1d3557', '#e63946', '#f1faee', '#a8dadc', '#457b9d'],
  ['#2a9d8f', '#e9c46a', '#f4a261', '#264653', '#e76f51'],
]

/** Low-contrast dunes: neighbouring oranges. */
const DUNES = ['#6fc0b4', '#f9b94c', '#f4a03a', '#e8893a', '#d9733a', '#c45f36', '#a9502f']

function scene(c: string[], n: number): string {
  let s = `<rect width="${W}" height="${H}" fill="${c[0]}"/>`
  for (let i = 1; i < 4; i++) {
    const y = H * (0.35 + i * 0.15)
    s += `<path d="M0 ${y} C ${W * 0.3} ${y - H * (0.2 + 0.05 * n)}, ${W * 0.6} ${y + H * 0.15}, ${W} ${y - H * 0.1} L ${W} ${H} L 0 ${H} Z" fill="${c[i]}"/>`
  }
  s += `<circle cx="${W * (0.3 + 0.2 * n)}" cy="${H * 0.25}" r="${H * 0.1}" fill="${c[4]}"/>`
  s += `<polygon points="${W * 0.7},${H * 0.6} ${W * 0.8},${H * 0.2} ${W * 0.9},${H * 0.6}" fill="${c[2]}"/>`
  return s
}

function dunes(w: number, h: number): string {
  let s = `<rect width="${w}" height="${h}" fill="${DUNES[0]}"/>`
  for (let i = 1; i < DUNES.length; i++) {
    const y = h * (0.25 + i * 0.1)
    s += `<path d="M0 ${y} C ${w * 0.25} ${y - h * 0.12}, ${w * 0.5} ${y + h * 0.1}, ${w} ${y - h * 0.05} L ${w} ${h} L 0 ${h} Z" fill="${DUNES[i]}"/>`
  }
  return s + `<circle cx="${w * 0.75}" cy="${h * 0.2}" r="${h * 0.08}" fill="#fff3c4"/>`
}

/** A card with rounded corners on a transparent ground: a gradient sky, a sun and two hills. */
function card(w: number, h: number): string {
  return (
    '<defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#f4c27a"/><stop offset="1" stop-color="#e0894a"/></linearGradient>' +
    '<radialGradient id="sun"><stop offset="0" stop-color="#fff6d0"/><stop offset="1" stop-color="#f7b84b"/></radialGradient></defs>' +
    `<rect x="${w * 0.1}" y="${h * 0.1}" width="${w * 0.8}" height="${h * 0.8}" rx="${h * 0.12}" fill="url(#sky)"/>` +
    `<circle cx="${w * 0.65}" cy="${h * 0.35}" r="${h * 0.12}" fill="url(#sun)"/>` +
    `<path d="M${w * 0.1} ${h * 0.7} Q ${w * 0.35} ${h * 0.5} ${w * 0.55} ${h * 0.68} T ${w * 0.9} ${h * 0.62} L ${w * 0.9} ${h * 0.9} L ${w * 0.1} ${h * 0.9} Z" fill="#c9773c"/>` +
    `<path d="M${w * 0.1} ${h * 0.8} Q ${w * 0.45} ${h * 0.66} ${w * 0.9} ${h * 0.78} L ${w * 0.9} ${h * 0.9} L ${w * 0.1} ${h * 0.9} Z" fill="#a65a2e"/>`
  )
}

const svg = (w: number, h: number, body: string): Buffer =>
  Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${body}</svg>`)

const dir = process.argv[2]
if (!dir) throw new Error('usage: npx tsx bench/_flat-art.ts <dir>')
mkdirSync(dir, { recursive: true })
const pictures: [string, Buffer][] = [
  ...SCENES.map((c, n): [string, Buffer] => [`flatart-${n}.png`, svg(W, H, scene(c, n))]),
  ['dunes.png', svg(W, H, dunes(W, H))],
  ['dunes-small.png', svg(640, 427, dunes(640, 427))],
  ['card.png', svg(600, 400, card(600, 400))],
]
for (const [name, source] of pictures) writeFileSync(join(dir, name), await sharp(source).png().toBuffer())
console.log(`${pictures.length} pictures in ${dir}`)
