/**
 * The webpack plugin: `import megaoptim from 'unplugin-megaoptim/webpack'`, or from CommonJS
 * `require('unplugin-megaoptim/webpack')(options)`: Node's require(esm) returns the `module.exports` export.
 */
import { megaoptim } from './index.ts'

const plugin = megaoptim.webpack as typeof megaoptim.webpack

export default plugin
export { plugin as 'module.exports' }
