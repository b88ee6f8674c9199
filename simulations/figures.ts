// Every figure the README shows, in one table: which benchmark or scenario prints it, with which
// arguments, the fields its JSON line carries, the targets it is judged on, and the arguments of
// its quick mode (same code, same fields, small sizes). `npm run bench -- --readme` regenerates
// the README from this table; test/simulations/quick.ts runs every quick mode and checks its
// fields, so a benchmark that stops working fails CI.

/** `==` judges a boolean figure (e.g. honest_hosts_agree); the others a number. */
export type Target = { key: string, op: '<=' | '>=' | '<', value: number } | { key: string, op: '==', value: boolean }

export interface Figure {
  kind: 'bench' | 'sim'
  name: string
  /** the arguments of the run whose figures the README shows */
  args: string[]
  /** the same run in quick mode */
  quick: string[]
  /** every field of its JSON line (besides `bench` / `sim`), full and quick alike */
  fields: string[]
  targets: Target[]
  /** what the figures mean, under the scenario block */
  note?: string
}

const HANDSHAKE_FIELDS = ['connections', 'mib', 'hybrid_connect_ms_p50', 'classic_connect_ms_p50', 'connect_ratio', 'hybrid_mib_s', 'classic_mib_s', 'throughput_ratio', 'hybrid_bare_handshake_ms_p50', 'classic_bare_handshake_ms_p50']

const SCALE_FIELDS = ['hosts', 'loss', 'churn', 'fail_canary', 'D', 'Dlo', 'Dhi', 'Dlazy', 'heartbeat_ms', 'reach50_ms', 'reach99_ms', 'reach100_ms', 'reached_online', 'online_at_publish', 'model50_ms', 'model99_ms', 'model100_ms', 'ratio', 'applied_ok', 'later_wave_starts', 'rollout_done_ms', 'sim_end_ms', 'msgs_sent_per_host', 'ihave_per_host', 'msgs_received_per_host', 'entries', 'folds', 'decisions', 'acts_digest', 'soaked', 'overdue', 'wall_ms', 'svg']

const IDLE_FIELDS = ['idle_ms', 'idle_bytes_per_s_per_host', 'idle_gossip_bytes_per_s_per_host', 'idle_repair_bytes_per_s_per_host', 'idle_pull_bytes_per_s_per_host', 'idle_witnesses', 'repair_rounds_mean', 'gossip_copies_per_host', 'log_bytes_per_day_per_host', 'rollout_bytes_per_host', 'rollout_log_bytes_per_host', 'rollout_witnesses', 'idle_wall_ms']

export const FIGURES: Figure[] = [
  {
    kind: 'bench',
    name: 'audit',
    args: [],
    quick: ['--quick'],
    fields: ['entries', 'verify_threads', 'append_per_s', 'verify_per_s', 'catchup_per_s', 'raw_verify_per_s', 'catchup_vs_raw'],
    targets: [{ key: 'append_per_s', op: '>=', value: 5000 }, { key: 'catchup_vs_raw', op: '>=', value: 0.7 }]
  },
  {
    kind: 'bench',
    name: 'footprint',
    args: [],
    quick: ['--quick'],
    fields: ['cli_help_ms_p50', 'status_no_daemon_ms_p50', 'idle_rss_mib'],
    targets: [{ key: 'cli_help_ms_p50', op: '<=', value: 300 }, { key: 'idle_rss_mib', op: '<=', value: 100 }]
  },
  {
    kind: 'bench',
    name: 'handshake',
    args: [],
    quick: ['--quick'],
    fields: HANDSHAKE_FIELDS,
    targets: [{ key: 'connect_ratio', op: '<=', value: 1.0 }, { key: 'throughput_ratio', op: '>=', value: 0.95 }]
  },
  {
    kind: 'bench',
    name: 'rollback',
    args: [],
    quick: ['--quick'],
    fields: ['runs', 'failed_runs', 'detect_to_healthy_ms_p50', 'detect_to_healthy_ms_max', 'switch_ms_p50', 'load_avg_1m_start', 'load_avg_1m_end'],
    targets: [{ key: 'detect_to_healthy_ms_p50', op: '<', value: 1000 }, { key: 'failed_runs', op: '<=', value: 0 }]
  },
  {
    kind: 'bench',
    name: 'rooms',
    args: [],
    quick: ['--quick'],
    fields: ['transport', 'latency_p50_ms', 'latency_p99_ms', 'msgs_per_s', 'message_bytes', 'hosts'],
    targets: [{ key: 'latency_p50_ms', op: '<=', value: 20 }]
  },
  {
    kind: 'bench',
    name: 'watchdog',
    args: [],
    quick: ['--quick'],
    fields: ['crash_to_serving_ms_p50', 'hang_to_serving_ms_p50', 'leak_to_serving_ms_p50', 'runs'],
    // hang: liveness timeout 1000 ms + 1 s; leak: RSS checked every 200 ms + 1 s (simulations/bench/watchdog.ts)
    targets: [{ key: 'crash_to_serving_ms_p50', op: '<=', value: 1000 }, { key: 'hang_to_serving_ms_p50', op: '<=', value: 2000 }, { key: 'leak_to_serving_ms_p50', op: '<=', value: 1200 }]
  },
  {
    kind: 'sim',
    name: 'rollout',
    args: ['--hosts', '50'],
    quick: ['--quick'],
    fields: ['hosts', 'known_p50_ms', 'known_p99_ms', 'applied_p50_ms', 'all_applied_ms'],
    targets: [{ key: 'known_p99_ms', op: '<=', value: 2000 }],
    note: '50 real libp2p hosts (hybrid Noise, gossipsub, the daemon\'s sync, membership and deploy agent with an executor that applies in zero time) in one process: every host held the signed release within `known_p99_ms` of its publication (target ≤ 2000 ms; nixfleet polls every 60 s, 5 s during a rollout). The 50 hosts share one Node process, so `applied_p50_ms` and `all_applied_ms` measure how fast one core runs 50 hosts\' networking, not the network: during the rollout the process is busy all the time (Noise and yamux framing, gossipsub, sync streams, LevelDB; the deploy agents\' decisions take under 1 %), as the ~100 entries of a rollout each reach all 50 hosts. With apply time and soak at zero each wave opens as soon as the previous wave\'s apply-ok entries have replicated. The plot is `out/sim-rollout.svg`.'
  },
  {
    kind: 'sim',
    name: 'adversary',
    args: [],
    quick: ['--quick'],
    fields: ['attacks', 'blocked', 'leaked_plaintexts', 'max_heap_growth_mib', 'honest_hosts_agree'],
    targets: [{ key: 'max_heap_growth_mib', op: '<=', value: 64 }, { key: 'blocked', op: '>=', value: 11 }, { key: 'leaked_plaintexts', op: '<=', value: 0 }, { key: 'honest_hosts_agree', op: '==', value: true }],
    note: 'Real daemon processes (3 honest hosts, an admin `x`) and one admitted member `r` restarted with modified code (a store with no checks, raw gossip, forged entries and frames) runs every network-reachable attack of issue 13: a backdated room-create of a room it is not in; `x` removes it from a room, then the admin demotes and revokes `x`; it posts into its old epoch with a backdated ts; an outsider feed of twenty 60 KiB entries relayed; an entry stamped an hour ahead; 1200 history requests to each host and 600 room frames of ~60 KiB; 200 announcements of ~98 KB naming random feeds and 400 of its own feed at heads nobody holds; a stranger\'s 60 pairing attempts; and, revoked, dialling back in. `blocked` counts the attacks every honest host withstood; `leaked_plaintexts` counts the messages sent in rooms it is not in or after its removal that it could decrypt with any key it held or forged, from every frame it was sent or could fetch (it must read its own room\'s, or the run fails); `max_heap_growth_mib` is the largest heap growth of an honest host over the whole run, per its own /metrics; `honest_hosts_agree` is true when they hold the same log and fold the same rooms afterwards.'
  },
  {
    kind: 'sim',
    name: 'partition',
    args: [],
    quick: ['--quick'],
    fields: ['hosts', 'split_ms', 'heal_converge_ms', 'later_wave_starts', 'side_b_waited', 'halted_everywhere', 'log_digests', 'member_digests', 'decision_digests'],
    targets: [{ key: 'later_wave_starts', op: '<=', value: 0 }, { key: 'log_digests', op: '<=', value: 1 }, { key: 'decision_digests', op: '<=', value: 1 }],
    note: '30 real hosts split in two during a rollout; a wave-1 host fails on one side, that side halts, the other side cannot open wave 2 (its gate needs every wave-1 host\'s signed ok); after healing every host holds the same log, member set and decision, and no host of a later wave ever started.'
  },
  {
    kind: 'sim',
    name: 'chaos',
    args: [],
    quick: ['--quick'],
    fields: ['runs', 'faults', 'invariant_violations', 'stuck_releases', 'waiting_on_dead_hosts', 'diverged_decisions', 'hosts', 'failed_seeds', 'waiting_seeds', 'wall_ms'],
    targets: [{ key: 'invariant_violations', op: '<=', value: 0 }, { key: 'stuck_releases', op: '<=', value: 0 }, { key: 'diverged_decisions', op: '<=', value: 0 }],
    note: '20 seeded runs of 10 real hosts (in-process libp2p, the daemon\'s sync, membership and deploy agent, an executor that applies in zero time) rolling out a release of three gated waves while faults hit them: every host\'s clock off by up to ±5 min (the timestamps it signs), kills at a phase of an apply (before the executor began it, after its outcome was journalled but not logged, after it was logged but not marked reported, during the gate soak) with a restart over the same store, hosts silent for good, a partition that heals, a failing apply, a health failure inside a soak and an overlapping release; and, drawn from the seed, per-release `maxInFlight` budgets, an `after` tag edge on the last wave, an admin\'s pin of one host mid-run (lifted by its expiry, an unpin or never) and a path failing after activation, quarantined while a second release names it for other hosts. Checked after every run: each attempt has one apply-start and exactly one outcome, no apply-start before the earlier waves\' gates were met by the signed attestations its host held, a halt shows on every host, hosts holding the same log decide the same, from the trail\'s apply-start/outcome pairs in causal order (what each author had seen) no more hosts of a release in flight than its budget, no untagged host starting before every tagged one was healthy, no pinned host starting, no start of a quarantined path before a clear (`--inject` writes one of each and the run names them), and no release is left neither done, halted, aborted nor superseded (`stuck_releases`) unless all it waits for is hosts killed for good in a wave with no `waitOfflineMs` (the overlapping release has none: it waits for them by design), which a live host\'s `release status` shows offline: those count as `waiting_on_dead_hosts`, their seeds in `waiting_seeds`. `failed_seeds` replays with `--seed N`.'
  },
  {
    kind: 'sim',
    name: 'scale',
    args: ['--hosts', '10000', '--loss', '0.05', '--churn', '0.1'],
    quick: ['--quick', '--loss', '0.05', '--churn', '0.1'],
    fields: [...SCALE_FIELDS, 'returned', 'catchup_p50_ms', 'catchup_max_ms'],
    targets: [{ key: 'ratio', op: '<=', value: 2 }],
    note: '10,000 simulated hosts on a discrete-event network (log-normal latency, loss, churn) running the same rollout decision code over a model of gossipsub with its real parameters (D=6, Dlo=4, Dhi=12, Dlazy=6, 1 s heartbeat, read from the installed package). `ratio` = reach99 / the push-gossip (SI) model\'s 99 % time for the same fan-out (target ≤ 2). Each simulated host keeps its own rollout state, as a daemon does: about 0.5 MiB a host, so the 10,000-host run needs ~5 GiB of heap (`npm run sim` allows 16 GiB). Plot: `out/sim-scale.svg`.'
  },
  {
    kind: 'sim',
    name: 'scale',
    args: ['--hosts', '10000', '--fail-canary', '--svg', 'out/sim-scale-fail-canary.svg'],
    quick: ['--quick', '--fail-canary'],
    fields: [...SCALE_FIELDS, 'halt_reached', 'halt_online', 'halt_all_ms'],
    targets: [{ key: 'later_wave_starts', op: '<=', value: 0 }],
    note: 'With `--fail-canary` the halt reaches every online host in `halt_all_ms` and no later wave starts. Plot: `out/sim-scale-fail-canary.svg`.'
  },
  {
    kind: 'sim',
    name: 'scale',
    args: ['--hosts', '10000', '--idle', '1h', '--no-svg'],
    quick: ['--quick', '--idle', '10m', '--no-svg'],
    fields: [...SCALE_FIELDS.filter((k) => k !== 'svg'), ...IDLE_FIELDS],
    targets: [{ key: 'idle_bytes_per_s_per_host', op: '<=', value: 2048 }, { key: 'log_bytes_per_day_per_host', op: '<=', value: 10_000_000 }],
    note: 'With `--idle 1h`, after the rollout the fleet idles for an hour while every host runs the log\'s own pure sync and witness code (`protocols/audit/reconcile.ts`, `witness-schedule.ts`, `witness-body.ts`): its own head announced on change only (gossip copies and IHAVE priced with gossipsub\'s own encoder over the simulated mesh), a digest repair with one random peer every 10 s, each message counted at its real encoded size, witnesses as the schedule asks, signed. `idle_bytes_per_s_per_host` is what the log costs a host\'s network with nothing happening, `log_bytes_per_day_per_host` what it adds to its disk; `rollout_bytes_per_host` and `rollout_log_bytes_per_host` what one release to every host costs each host. Before this design (every host gossiping its whole head vector every 10 s and witnessing every moved feed every 5 min, echoing other witnesses) the same fleet would have cost ~920 MB/s and ~2.65 TB/day per host (N² × 92 B / 10 s and N² × 92 B / 5 min, from the constants).'
  },
  {
    kind: 'sim',
    name: 'catchup',
    args: ['--hosts', '1000', '--offline', '7d'],
    quick: ['--quick'],
    fields: ['hosts', 'history_days', 'offline_days', 'releases_per_day', 'outcomes_per_release', 'churn_per_day', 'mbps', 'rtt_ms', 'history_entries', 'catchup_entries', 'catchup_digest_rounds', 'catchup_net_ms', 'catchup_ingest_ms', 'catchup_ms', 'join_retained', 'join_after_cover', 'join_net_ms', 'join_adopt_ms', 'join_ingest_ms', 'join_ms', 'join_replay_ms_estimated', 'wall_ms'],
    targets: [{ key: 'catchup_ms', op: '<=', value: 60_000 }, { key: 'join_ms', op: '<=', value: 60_000 }],
    note: 'A 1,000-host fleet with a year of real signed history (one release a day to every host, its outcomes, witnesses as scheduled, membership churn, a daily admin checkpoint). `catchup_ms`: a host back after 7 days (digest rounds, transfer modelled at `mbps` and `rtt_ms` with 8 pulls at once, plus the measured real `AuditStore` ingest of every missing entry). `join_ms`: a new host starting from the newest checkpoint (cover, refs, retained entries adopted for real, then a day of entries after the cover ingested for real). `join_replay_ms_estimated` prices a join that replays the whole year at the measured rate, which checkpoints avoid.'
  }
]

export type Result = Record<string, number | string | boolean>

export function verdict (r: Result, t: Target): 'met' | 'MISSED' | 'missing' {
  const v = r[t.key]
  if (t.op === '==') return typeof v !== 'boolean' ? 'missing' : v === t.value ? 'met' : 'MISSED'
  if (typeof v !== 'number') return 'missing'
  const ok = t.op === '<=' ? v <= t.value : t.op === '>=' ? v >= t.value : v < t.value
  return ok ? 'met' : 'MISSED'
}

/** The fields a result lacks, or carries beyond its figure's list (both mean the list or the code drifted). */
export function fieldDrift (f: Figure, r: Result): { missing: string[], extra: string[] } {
  const keys = Object.keys(r).filter((k) => k !== f.kind)
  return { missing: f.fields.filter((k) => !(k in r)), extra: keys.filter((k) => !f.fields.includes(k)) }
}
