# A fixture system generation (test/fixtures/nix/generation.nix: its switch-to-configuration
# restarts the fixture service) that also carries an agent (test/agents/fixtures/generation.nix:
# bin/agent, which with agentMode "crash" exits at start). A host whose agent runs the profile's
# bin/agent runs the agent of whatever generation it activated.
{ version, mode, agentMode, nodeBin }:
let
  base = import ../../test/fixtures/nix/generation.nix { inherit version mode nodeBin; };
  agent = import ../../test/agents/fixtures/generation.nix { inherit version nodeBin; mode = agentMode; };
in
derivation {
  name = "fleetmesh-fixture-system-with-agent-${version}";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  inherit base agent;
  args = [ "-c" ''
    /bin/mkdir -p $out/bin
    /bin/ln -s $base/bin/switch-to-configuration $out/bin/switch-to-configuration
    /bin/ln -s $agent/bin/agent $out/bin/agent
  '' ];
}
