// Preloaded (NODE_OPTIONS=--import) into one daemon of the safety scenario: that host's wall
// clock, as the daemon reads it (Date.now: the timestamps it signs, the `now` its decisions
// use), runs FLEETMESH_SIM_CLOCK_AHEAD_MS ahead, as a host with a fast clock would. The daemon
// has no clock option of its own; the monotonic clocks (hrtime, performance) are left alone.
const ahead = Number(process.env.FLEETMESH_SIM_CLOCK_AHEAD_MS ?? '0')
if (!Number.isSafeInteger(ahead)) throw new Error('FLEETMESH_SIM_CLOCK_AHEAD_MS must be an integer of ms')
const realNow = Date.now.bind(Date)
Date.now = () => realNow() + ahead
