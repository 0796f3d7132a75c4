import { bundlerSuite } from './suite.ts'

bundlerSuite('vite')
