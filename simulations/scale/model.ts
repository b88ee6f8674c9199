// The reference curve: deterministic mean-field SI recurrence for push gossip in which every
// host forwards a message once, to `fanout` peers chosen at random, one hop taking `hopMs`.
// With I_k informed and n_k newly informed after k hops, the next hop informs
//   n_{k+1} = (N - I_k) · (1 - (1 - 1/(N-1))^(fanout · n_k)).

export interface ModelPoint { ms: number, reached: number }

export function pushGossipCurve (hosts: number, fanout: number, hopMs: number): ModelPoint[] {
  const pts: ModelPoint[] = [{ ms: 0, reached: 1 }]
  let informed = 1
  let fresh = 1
  for (let k = 1; fresh >= 1e-9 && informed < hosts - 1e-6 && k < 10_000; k++) {
    fresh = (hosts - informed) * (1 - Math.pow(1 - 1 / (hosts - 1), fanout * fresh))
    informed += fresh
    pts.push({ ms: k * hopMs, reached: informed })
  }
  return pts
}

/** The first time the curve reaches `fraction` of `hosts`, interpolated between hops. */
export function timeToReach (curve: ModelPoint[], hosts: number, fraction: number): number {
  // the curve only approaches N: "everyone" means within half a host of it
  const goal = Math.min(fraction * hosts, hosts - 0.5)
  for (let i = 1; i < curve.length; i++) {
    const a = curve[i - 1]
    const b = curve[i]
    if (b.reached >= goal - 1e-6) return a.ms + (b.ms - a.ms) * Math.min(1, Math.max(0, (goal - a.reached) / (b.reached - a.reached)))
  }
  return Number.POSITIVE_INFINITY
}
