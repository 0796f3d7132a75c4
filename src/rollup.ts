/**
 * The Rollup plugin: `import megaoptim from 'unplugin-megaoptim/rollup'`, or from CommonJS
 * `require('unplugin-megaoptim/rollup')(options)`: Node's require(esm) returns the `module.exports` export.
 */
import { megaoptim } from './index.ts'

const plugin = megaoptim.rollup as typeof megaoptim.rollup

export default plugin
export { plugin as 'module.exports' }
