// The benchmarks' quick modes (test/simulations/quick.ts).
import { quickModes } from './quick.js'

quickModes((f) => f.kind === 'bench')
