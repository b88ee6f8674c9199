# NixOS module for the fleetmesh daemon: `services.fleetmesh`.
#
# Evaluating it needs nixpkgs (lib, pkgs, the NixOS module system): import it from a
# NixOS configuration (`imports = [ ./nixos/module.nix ];`). Without nixpkgs the tests parse
# it, and evaluate its agents with the few lib functions they need written out.
#
# The health check options mirror the TypeScript config types in nixos/health.ts
# (kind, name, intervalMs, retries, timeoutMs; units / url, expectStatus / command), so
# the generated JSON is read by the daemon as is.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.fleetmesh;
  stateUnderVarLib = lib.hasPrefix "/var/lib/" (toString cfg.dataDir);
  inherit (lib) mkEnableOption mkIf mkOption types;

  commonCheckOptions = {
    name = mkOption { type = types.nullOr types.str; default = null; description = "Name in results and audit events."; };
    intervalMs = mkOption { type = types.ints.positive; default = 1000; description = "Pause between probes."; };
    retries = mkOption { type = types.ints.positive; default = 3; description = "Consecutive failed probes that fail the check."; };
    timeoutMs = mkOption { type = types.ints.positive; default = 5000; description = "Limit of one probe."; };
    startPeriodMs = mkOption { type = types.ints.unsigned; default = 10000; description = "Failed probes before the check's first success do not count within this long of the start of verification."; };
  };

  healthCheck = types.submodule {
    options = commonCheckOptions // {
      kind = mkOption { type = types.enum [ "systemd" "http" "command" ]; };
      units = mkOption { type = types.listOf types.str; default = [ ]; description = "systemd: units that must be active."; };
      url = mkOption { type = types.nullOr types.str; default = null; description = "http: URL to GET."; };
      expectStatus = mkOption { type = types.ints.between 100 599; default = 200; description = "http: expected status."; };
      command = mkOption { type = types.nullOr (types.either types.str (types.listOf types.str)); default = null; description = "command: argv, or a string for /bin/sh -c; must exit 0."; };
    };
  };

  # Drop the options that do not apply to a check's kind, and unset names.
  checkToJSON = c: lib.filterAttrs (_: v: v != null) ({
    inherit (c) kind name intervalMs retries timeoutMs startPeriodMs;
  } // lib.optionalAttrs (c.kind == "systemd") { inherit (c) units; }
    // lib.optionalAttrs (c.kind == "http") { inherit (c) url expectStatus; }
    // lib.optionalAttrs (c.kind == "command") { inherit (c) command; });

  healthFile = pkgs.writeText "fleetmesh-health.json" (builtins.toJSON {
    soakMs = cfg.soakMs;
    checks = map checkToJSON cfg.healthChecks;
  });

  # The agent options mirror node/agents/types.ts (AgentSpec): nixos/agents.nix turns each
  # into its unit and its config entry.
  restartPolicy = types.submodule {
    options = {
      backoffInitialMs = mkOption { type = types.ints.between 10 3600000; default = 100; description = "First restart delay (RestartSec=)."; };
      backoffMaxMs = mkOption { type = types.ints.between 10 3600000; default = 30000; description = "Ceiling the delay doubles to (RestartMaxDelaySec=)."; };
      maxRestarts = mkOption { type = types.ints.between 1 1000; default = 5; description = "More restarts than this within windowMs is a crash loop (StartLimitBurst=)."; };
      windowMs = mkOption { type = types.ints.between 1000 86400000; default = 60000; description = "The crash-loop window (StartLimitIntervalSec=)."; };
    };
  };

  liveness = types.submodule {
    options = {
      kind = mkOption { type = types.enum [ "heartbeat" "http" "command" ]; description = "heartbeat: the agent POSTs /v1/agents/NAME/heartbeat (WatchdogSec=); http, command: probes the daemon runs."; };
      timeoutMs = mkOption { type = types.ints.between 100 86400000; description = "No heartbeat or passing probe for this long is a hang."; };
      url = mkOption { type = types.nullOr types.str; default = null; description = "http: URL that must answer 200."; };
      argv = mkOption { type = types.nullOr (types.listOf types.str); default = null; description = "command: argv that must exit 0."; };
      intervalMs = mkOption { type = types.ints.between 50 3600000; default = 1000; description = "http, command: pause between probes."; };
    };
  };

  agentOptions = {
    command = mkOption { type = types.str; description = "The program (ExecStart=)."; };
    args = mkOption { type = types.listOf types.str; default = [ ]; description = "Its arguments."; };
    env = mkOption { type = types.attrsOf types.str; default = { }; description = "Its environment (FLEETMESH_AGENT, FLEETMESH_API_URL, FLEETMESH_AGENT_TOKEN are the daemon's)."; };
    cwd = mkOption { type = types.nullOr types.str; default = null; description = "Working directory (absolute)."; };
    user = mkOption { type = types.nullOr types.str; default = null; description = "Run as this user (User=)."; };
    restart = mkOption { type = restartPolicy; default = { }; description = "Restart backoff and crash-loop limit."; };
    memoryMaxBytes = mkOption { type = types.nullOr (types.ints.between 1048576 281474976710656); default = null; description = "Memory ceiling of the unit's cgroup (MemoryMax=)."; };
    liveness = mkOption { type = types.nullOr liveness; default = null; description = "When the agent counts as alive; without one, while its process runs."; };
    stopGraceMs = mkOption { type = types.ints.between 0 600000; default = 5000; description = "SIGTERM to SIGKILL (TimeoutStopSec=)."; };
    escalateWithinMs = mkOption { type = types.ints.between 0 86400000; default = 600000; description = "A crash loop this soon after an apply fails that generation (0: never)."; };
  };

  agents = lib.mapAttrs (name: agent: import ./agents.nix { inherit name agent; }) cfg.agents;

  # Declared agents make the daemon's config this file (the data dir's config.json is then not
  # read): the module is where this host's config is declared.
  configFile = pkgs.writeText "fleetmesh-config.json" (builtins.toJSON {
    version = 1;
    agents = lib.mapAttrsToList (_: a: a.spec) agents;
  });
in
{
  options.services.fleetmesh = {
    enable = mkEnableOption "the fleetmesh daemon (mesh member, rollout agent)";
    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./nixos/package.nix { }";
      description = "The fleetmesh package (provides bin/fleetmesh); built from this repository by default.";
    };
    dataDir = mkOption { type = types.path; default = "/var/lib/fleetmesh"; description = "Keys, audit chain, journal."; };
    listenAddresses = mkOption {
      type = types.listOf types.str;
      default = [ "/ip4/0.0.0.0/tcp/4001" "/ip6/::/tcp/4001" ];
      description = "libp2p multiaddrs to listen on.";
    };
    bootstrap = mkOption { type = types.listOf types.str; default = [ ]; description = "Multiaddrs of members to dial at start."; };
    healthChecks = mkOption { type = types.listOf healthCheck; default = [ ]; description = "Checks a new generation must pass."; };
    soakMs = mkOption { type = types.ints.unsigned; default = 0; description = "How long checks must stay clean before a generation counts as good (the CLI config's default too)."; };
    extraArgs = mkOption { type = types.listOf types.str; default = [ ]; description = "Extra arguments to `fleetmesh start`."; };
    agents = mkOption {
      type = types.attrsOf (types.submodule { options = agentOptions; });
      default = { };
      description = "Agents the daemon supervises, each the unit fleetmesh-agent-NAME.service (backend \"systemd\"). Declaring any makes the daemon's config the module's.";
    };
  };

  config = mkIf cfg.enable (lib.mkMerge [ {
    systemd.tmpfiles.rules = mkIf (!stateUnderVarLib) [ "d ${toString cfg.dataDir} 0700 root root -" ];
    systemd.services.fleetmesh = {
      description = "fleetmesh: mesh member and rollout agent";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      # nix-env and switch-to-configuration must be on PATH for activation, and systemd-run,
      # which runs each activation as a unit of its own.
      path = [ config.nix.package pkgs.coreutils config.systemd.package ];
      serviceConfig = {
        ExecStart = lib.escapeShellArgs ([
          "${cfg.package}/bin/fleetmesh" "start"
          "--data-dir" cfg.dataDir
          "--health" "${healthFile}"
        ] ++ lib.concatMap (a: [ "--listen" a ]) cfg.listenAddresses
          ++ lib.concatMap (a: [ "--bootstrap" a ]) cfg.bootstrap
          ++ cfg.extraArgs);
        # A deploy agent that stays down cannot roll a bad generation back.
        Restart = "always";
        RestartSec = "2s";
        # switch-to-configuration restarts changed units, possibly this one: the activation runs
        # in a transient unit of its own (systemd-run), outside this unit's cgroup, so stopping
        # this unit does not stop it, and the restarted daemon finishes verifying it.
        # systemd creates a data dir under /var/lib itself; any other one comes from tmpfiles below.
        StateDirectory = mkIf stateUnderVarLib (lib.removePrefix "/var/lib/" (toString cfg.dataDir));
        StateDirectoryMode = "0700";
        UMask = "0077";

        # Hardening that still lets the activation command switch the system. It runs as
        # root and writes /nix/var/nix/profiles (nix-env --set), /nix/store (nix copy),
        # /boot (bootloader entries), /etc (the new /etc) and talks to systemd to restart
        # units: so no ProtectSystem=strict/full, no ReadOnlyPaths on /nix, /etc or /boot,
        # no PrivateTmp/ProtectHome that would hide paths activation scripts use, no
        # NoNewPrivileges (activation may run setuid wrappers), no SystemCallFilter
        # (activation runs arbitrary system tools). What remains is what cannot affect it:
        ProtectKernelTunables = false; # activation applies sysctl settings
        ProtectKernelModules = false; # and may load kernel modules
        LockPersonality = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = false; # activation creates setuid wrappers
        MemoryDenyWriteExecute = false; # Node's JIT needs W+X pages
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
        ProtectClock = true;
        ProtectHostname = false; # activation sets the hostname
      };
    };
  } {
    systemd.services = lib.mapAttrs' (name: a: lib.nameValuePair "fleetmesh-agent-${name}" a.unit) agents;
  } (mkIf (cfg.agents != { }) {
    systemd.services.fleetmesh.environment.FLEETMESH_CONFIG = "${configFile}";
  }) ]);
}
