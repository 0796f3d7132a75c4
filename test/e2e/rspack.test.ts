import { bundlerSuite } from './suite.ts'

bundlerSuite('rspack')
