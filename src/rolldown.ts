/**
 * The Rolldown plugin: `import megaoptim from 'unplugin-megaoptim/rolldown'`, or from CommonJS
 * `require('unplugin-megaoptim/rolldown')(options)`: Node's require(esm) returns the `module.exports` export.
 */
import { megaoptim } from './index.ts'

const plugin = megaoptim.rolldown as typeof megaoptim.rolldown

export default plugin
export { plugin as 'module.exports' }
