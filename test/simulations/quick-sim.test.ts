// The scenarios' quick modes but the adversary's (test/simulations/quick.ts).
import { isAdversary, quickModes } from './quick.js'

quickModes((f) => f.kind === 'sim' && !isAdversary(f))
