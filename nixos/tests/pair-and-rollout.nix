# Two NixOS machines running services.fleetmesh: `a` founds a mesh, `b` joins it with an
# invite code over the VM network, then `a` publishes a release of b's `v2` specialisation
# (a real NixOS system) and b switches to it through its own deploy agent.
#
#   nix flake check               (or: nix build .#checks.x86_64-linux.pair-and-rollout)
#
# It needs nixpkgs and KVM; the repository's own tests only parse this file.
{ pkgs, module ? ../module.nix }:

let
  fleetmeshNode = { config, pkgs, ... }: {
    imports = [ module ];
    environment.systemPackages = [ config.services.fleetmesh.package pkgs.jq ];
    services.fleetmesh = {
      enable = true;
      listenAddresses = [ "/ip4/0.0.0.0/tcp/4001" ];
    };
    networking.firewall.allowedTCPPorts = [ 4001 ];
    virtualisation.memorySize = 1536;
    # the release b switches to: its own system plus one file that says so
    specialisation.v2.configuration.environment.etc."fleetmesh-release".text = "v2";
  };
in
pkgs.testers.runNixOSTest {
  name = "fleetmesh-pair-and-rollout";

  nodes.a = fleetmeshNode;
  nodes.b = {
    imports = [ fleetmeshNode ];
    # b starts empty and is paired by invite: `start --init` makes its data dir
    services.fleetmesh.extraArgs = [ "--init" ];
  };

  testScript = ''
    import json

    def fm(machine, args):
        return machine.succeed(f"fleetmesh --data-dir /var/lib/fleetmesh {args}")

    start_all()

    # a founds the mesh: initialised before its daemon starts for good
    a.wait_for_unit("multi-user.target")
    a.succeed("systemctl stop fleetmesh")
    fm(a, "init --mesh vmtest --listen /ip4/0.0.0.0/tcp/4001")
    a.succeed("systemctl start fleetmesh")
    a.wait_until_succeeds("fleetmesh --data-dir /var/lib/fleetmesh status --json", timeout=120)

    b.wait_for_unit("fleetmesh.service")
    b.wait_until_succeeds("fleetmesh --data-dir /var/lib/fleetmesh status --json", timeout=120)

    with subtest("b joins with an invite code from a"):
        code = json.loads(fm(a, "invite --tag web --json"))["code"]
        joined = json.loads(fm(b, f"join {code} --json"))
        assert joined["admitted"], joined
        for m in (a, b):
            m.wait_until_succeeds(
                "test $(fleetmesh --data-dir /var/lib/fleetmesh members --json | jq length) = 2", timeout=120)

    with subtest("a release of b's v2 system rolls out to b"):
        v2 = b.succeed("readlink -f /run/current-system/specialisation/v2").strip()
        b.fail("test -e /etc/fleetmesh-release")
        release = json.loads(fm(a, f"release publish --tag web --path {v2} --waves 100% --json"))
        a.wait_until_succeeds(
            f"fleetmesh --data-dir /var/lib/fleetmesh release status {release['id']} --json | jq -e '.state == \"done\"'",
            timeout=600)
        b.succeed("grep -qx v2 /etc/fleetmesh-release")
        assert b.succeed("readlink -f /run/current-system").strip() == v2
  '';
}
