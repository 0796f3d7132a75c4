/**
 * Where `megaoptim optimize` keeps its cache when `--cache` is not given: the project's
 * `node_modules/.cache/unplugin-megaoptim` (the plugin's default) when run inside a project (a
 * package.json above the working directory), else the user's cache folder (`$XDG_CACHE_HOME` or
 * `~/.cache` on Linux, `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows).
 */
import envPaths from 'env-paths'
import findCacheDirectory from 'find-cache-dir'

const NAME = 'unplugin-megaoptim'

export function defaultCacheDir(cwd: string): string {
  return findCacheDirectory({ name: NAME, cwd }) ?? envPaths(NAME, { suffix: '' }).cache
}
