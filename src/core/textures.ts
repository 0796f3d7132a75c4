/**
 * Data textures are not pictures: a normal, roughness, metallic, height, occlusion or ORM map holds numbers
 * a shader reads, so a perceptual metric says nothing about them and lossy compression breaks the lighting
 * of a 3D scene. They are recognized by the names glTF, three.js, Poly Haven, ambientCG and Substance
 * exports give them, and sent with `compression: 'lossless'` (see the `textures` option).
 */
import picomatch from 'picomatch'
import { normalizeFileName } from './filter.ts'
import type { TexturesOption } from './options.ts'

/**
 * Words that name a data map wherever they stand: between separators (`wood_rough_1k`) or as a part of a
 * camelCase name (`LeavesNormalGL`, `occlusionRoughnessMetallic`). Long enough never to be read out of a
 * bundler's content hash.
 */
const WORDS = new Set([
  'normal', 'normals', 'normalgl', 'normaldx', 'normalmap',
  'rough', 'roughness', 'roughnessmap', 'gloss', 'glossiness',
  'metal', 'metallic', 'metalness', 'metalnessmap', 'metallicroughness',
  'height', 'heightmap', 'displacement', 'displace', 'bump', 'bumpmap',
  'occlusion', 'ambientocclusion', 'occlusionroughnessmetallic',
])

/**
 * Abbreviations that count only as a whole separator-delimited part (`_nor_gl_`, `-ao.`) or as an
 * upper-case part of a camelCase name (`RockAO`, `MossORM`): inside a word they would match far too much
 * (`tao`, `armchair`), and a hash could hold them by chance, so they are never looked for in one.
 */
const ABBREVIATIONS = new Set(['nor', 'nrm', 'norm', 'disp', 'ao', 'orm', 'arm', 'rma', 'mra'])

/** A bundler's content hash at the end of a name: Vite/Rollup `-DiwrgTda`, webpack `.3fa1c2d4e5`. */
const HASH_SUFFIX = /[-.](?:[A-Za-z0-9_-]{8}|[0-9a-f]{16,32})$/

/** Splits `LeavesNormalGL` into `Leaves`, `Normal`, `GL`; `RockAO` into `Rock`, `AO`. */
function camelParts(part: string): string[] {
  return part.split(/(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])/)
}

function stem(fileName: string): string {
  const base = normalizeFileName(fileName).split('/').pop()!
  const dot = base.lastIndexOf('.')
  return dot > 0 ? base.slice(0, dot) : base
}

/** Whether an emitted file's name says it is a data texture (normal, roughness, metallic, ... map). */
export function isDataTextureName(fileName: string): boolean {
  const name = stem(fileName)
  for (const part of name.split(/[-_. ]+/)) {
    const lower = part.toLowerCase()
    if (WORDS.has(lower)) return true
    if (camelParts(part).some((p) => WORDS.has(p.toLowerCase()))) return true
  }
  // Abbreviations only in the name the author gave: a hash's characters are not words.
  const unhashed = name.replace(HASH_SUFFIX, '')
  return unhashed.split(/[-_. ]+/).some(
    (part) =>
      ABBREVIATIONS.has(part.toLowerCase()) ||
      camelParts(part).some((p) => p.length > 1 && p === p.toUpperCase() && ABBREVIATIONS.has(p.toLowerCase())),
  )
}

/**
 * Which emitted files are data textures for the `textures` option: the name rule for `'lossless'`,
 * the user's globs (matched like `include`) for a list, none for `'as-images'`.
 */
export function createTextureMatcher(textures: TexturesOption): (fileName: string) => boolean {
  if (textures === 'as-images') return () => false
  if (textures === 'lossless') return isDataTextureName
  const match = picomatch(textures, { nocase: true, dot: true })
  return (fileName) => match(normalizeFileName(fileName))
}
