/**
 * The Vite plugin: `import megaoptim from 'unplugin-megaoptim/vite'`, or from CommonJS
 * `require('unplugin-megaoptim/vite')(options)`: Node's require(esm) returns the `module.exports` export.
 */
import { megaoptim } from './index.ts'

const plugin = megaoptim.vite as typeof megaoptim.vite

export default plugin
export { plugin as 'module.exports' }
