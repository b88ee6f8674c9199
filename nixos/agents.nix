# One agent of services.fleetmesh.agents (nixos/module.nix) as what NixOS makes a unit of
# (systemd.services."fleetmesh-agent-NAME") and as the daemon's config entry for it (the
# `agents` list of config.json, backend "systemd": node/agents/systemd.ts). Builtins only, so
# the tests evaluate it without nixpkgs.
#
# systemd runs the agent and heals what it can see: a crash (Restart=on-failure, RestartSec=
# growing to the backoff's ceiling), memory over the ceiling (MemoryMax=: the kernel's OOM
# kill), missed heartbeats (WatchdogSec=; the daemon passes each heartbeat the agent sends
# through the control API on as WATCHDOG=1). More restarts within the window than the policy
# allows trip StartLimitBurst=. The daemon starts the unit once it has written the agent's
# token to its EnvironmentFile=, and runs the http/command probes and the escalation itself.
{ name, agent, runtimeDir ? "/run/fleetmesh/agents" }:

let
  a = agent;
  r = a.restart;
  l = a.liveness;
  ms = n: "${toString n}ms";
  # what nixpkgs' utils.escapeSystemdExecArg does: a JSON string, with specifiers and
  # variable references doubled so that systemd takes them literally
  execArg = s: builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON s);
  # the restart delay doubles from RestartSec= to RestartMaxDelaySec= over this many restarts
  steps = let go = d: n: if d >= r.backoffMaxMs || n >= 32 then n else go (d * 2) (n + 1); in go r.backoffInitialMs 0;
  optional = cond: attrs: if cond then attrs else { };
  nonNull = attrs: builtins.removeAttrs attrs (builtins.filter (k: attrs.${k} == null) (builtins.attrNames attrs));
  livenessJSON =
    if l == null then null
    else if l.kind == "heartbeat" then { inherit (l) kind timeoutMs; }
    else if l.kind == "http" then { inherit (l) kind url intervalMs timeoutMs; }
    else { inherit (l) kind argv intervalMs timeoutMs; };
in
{
  unit = {
    description = "fleetmesh agent ${name}";
    # started by the daemon, not at boot: it holds the token the agent needs; stopped with it
    partOf = [ "fleetmesh.service" ];
    after = [ "fleetmesh.service" ];
    environment = a.env;
    startLimitBurst = r.maxRestarts + 1;
    startLimitIntervalSec = (r.windowMs + 999) / 1000;
    serviceConfig = {
      ExecStart = builtins.concatStringsSep " " (map execArg ([ a.command ] ++ a.args));
      Restart = "on-failure";
      RestartSec = ms r.backoffInitialMs;
      # the grace between SIGTERM and SIGKILL
      TimeoutStopSec = ms a.stopGraceMs;
      EnvironmentFile = "-${runtimeDir}/${name}.env";
      # MemoryCurrent in `systemctl show`, which the daemon reports
      MemoryAccounting = true;
    }
    // optional (r.backoffMaxMs > r.backoffInitialMs) { RestartSteps = steps; RestartMaxDelaySec = ms r.backoffMaxMs; }
    // optional (a.user != null) { User = a.user; }
    // optional (a.cwd != null) { WorkingDirectory = a.cwd; }
    // optional (a.memoryMaxBytes != null) { MemoryMax = toString a.memoryMaxBytes; }
    // optional (l != null && l.kind == "heartbeat") {
      WatchdogSec = ms l.timeoutMs;
      # the daemon's systemd-notify speaks for the main process, and the agent's children may too
      NotifyAccess = "all";
    };
  };

  spec = nonNull {
    inherit name;
    backend = "systemd";
    inherit (a) command args env restart stopGraceMs escalateWithinMs cwd user memoryMaxBytes;
    liveness = livenessJSON;
  };
}
