/**
 * What `npm i -D unplugin-megaoptim` does to a user: the packed tarball installed into a fresh app, with
 * install scripts allowed. Nothing native is compiled (better-sqlite3 is an optional peer, sharp ships
 * prebuilt binaries), no dependency has an install script to run, and no dependency asks for a Node version
 * the package claims to support but it does not (no EBADENGINE). Needs the npm registry (or a warm cache).
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import semver from 'semver'
import { expect, test } from 'vitest'

const exec = promisify(execFile)
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

interface Manifest {
  name: string
  version: string
  scripts?: Record<string, string>
  engines?: { node?: string }
}

/** Every installed package (nested ones too), with its folder. */
function installed(dir: string): Array<{ dir: string; manifest: Manifest }> {
  const found: Array<{ dir: string; manifest: Manifest }> = []
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    if (name.startsWith('.')) continue
    const full = path.join(dir, name)
    if (name.startsWith('@')) {
      found.push(...installed(full))
      continue
    }
    const file = path.join(full, 'package.json')
    if (!existsSync(file)) continue
    found.push({ dir: full, manifest: JSON.parse(readFileSync(file, 'utf8')) as Manifest })
    found.push(...installed(path.join(full, 'node_modules')))
  }
  return found
}

test('the packed package installs light: no native build, no install script, no EBADENGINE', async () => {
  const own = JSON.parse(readFileSync('package.json', 'utf8')) as Manifest & { peerDependenciesMeta?: Record<string, { optional?: boolean }> }
  expect(own.peerDependenciesMeta?.['better-sqlite3']?.optional).toBe(true)
  await exec(npm, ['run', 'build'], { maxBuffer: 64 * 1024 * 1024 })
  const packDir = mkdtempSync(path.join(tmpdir(), 'megaoptim-pack-'))
  const { stdout: packed } = await exec(npm, ['pack', '--json', '--pack-destination', packDir])
  const tarball = path.join(packDir, (JSON.parse(packed) as Array<{ filename: string }>)[0]!.filename)

  const app = mkdtempSync(path.join(tmpdir(), 'megaoptim-app-'))
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
  const { stdout, stderr } = await exec(
    npm,
    ['install', '--save-dev', '--prefer-offline', '--ignore-scripts=false', '--foreground-scripts', '--no-audit', '--no-fund', tarball],
    { cwd: app, maxBuffer: 64 * 1024 * 1024 },
  )
  const log = `${stdout}\n${stderr}`
  expect(log).not.toMatch(/EBADENGINE/)
  expect(log).not.toMatch(/gyp|prebuild-install/i)

  const packages = installed(path.join(app, 'node_modules'))
  expect(packages.map((p) => p.manifest.name)).toContain('unplugin-megaoptim')
  expect(packages.map((p) => p.manifest.name)).not.toContain('better-sqlite3')
  // A binding.gyp makes npm run node-gyp even without an install script.
  const building = packages
    .filter(({ dir, manifest }) => ['preinstall', 'install', 'postinstall'].some((h) => manifest.scripts?.[h]) || existsSync(path.join(dir, 'binding.gyp')))
    .map((p) => p.manifest.name)
  expect(building).toEqual([])
  // Every Node version the package claims is one each dependency accepts.
  const claimed = own.engines!.node!
  const narrower = packages.filter((p) => p.manifest.engines?.node && !semver.subset(claimed, p.manifest.engines.node, { includePrerelease: false }))
  expect(narrower.map((p) => `${p.manifest.name}@${p.manifest.version} wants node ${p.manifest.engines!.node}`)).toEqual([])

  const { stdout: version } = await exec(path.join(app, 'node_modules', '.bin', 'megaoptim'), ['--version'])
  expect(version.trim()).toBe(own.version)
  const { stdout: loaded } = await exec(process.execPath, ['--input-type=module', '-e', "const m = await import('unplugin-megaoptim/vite'); console.log(typeof m.default)"], { cwd: app })
  expect(loaded.trim()).toBe('function')
}, 600_000)
