import { bundlerSuite } from './suite.ts'

bundlerSuite('webpack')
