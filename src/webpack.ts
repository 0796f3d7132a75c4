/**
 * The webpack plugin: `import megaoptim from 'unplugin-megaoptim/webpack'`.
 */
import { megaoptim } from './index.ts'

export default megaoptim.webpack as typeof megaoptim.webpack
