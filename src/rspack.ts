/**
 * The Rspack plugin: `import megaoptim from 'unplugin-megaoptim/rspack'`, or from CommonJS
 * `require('unplugin-megaoptim/rspack')(options)`: Node's require(esm) returns the `module.exports` export.
 */
import { megaoptim } from './index.ts'

const plugin = megaoptim.rspack as typeof megaoptim.rspack

export default plugin
export { plugin as 'module.exports' }
