/**
 * The Rollup plugin: `import megaoptim from 'unplugin-megaoptim/rollup'`.
 */
import { megaoptim } from './index.ts'

export default megaoptim.rollup as typeof megaoptim.rollup
