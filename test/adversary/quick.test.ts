// `npm run sim -- adversary --quick` prints its record (test/simulations/quick.ts). It has a test
// directory of its own because the test runner takes files in path order: this one, the longest
// quick mode, starts first instead of ending the run alone.
import { isAdversary, quickModes } from '../simulations/quick.js'

quickModes(isAdversary)
