/**
 * The esbuild plugin: `import megaoptim from 'unplugin-megaoptim/esbuild'`, or from CommonJS
 * `require('unplugin-megaoptim/esbuild')(options)`: Node's require(esm) returns the `module.exports` export.
 */
import { megaoptim } from './index.ts'

const plugin = megaoptim.esbuild as typeof megaoptim.esbuild

export default plugin
export { plugin as 'module.exports' }
