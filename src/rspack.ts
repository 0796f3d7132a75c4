/**
 * The Rspack plugin: `import megaoptim from 'unplugin-megaoptim/rspack'`.
 */
import { megaoptim } from './index.ts'

export default megaoptim.rspack as typeof megaoptim.rspack
