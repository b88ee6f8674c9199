{
  description = "fleetmesh: a private post-quantum libp2p mesh for a fleet of NixOS servers (package, NixOS module, VM test)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      # builtins only down to each system's value: the systems and the module evaluate
      # without fetching nixpkgs (the repository's tests check that much).
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
    in
    {
      packages = forAllSystems (system: rec {
        fleetmesh = nixpkgs.legacyPackages.${system}.callPackage ./nixos/package.nix { };
        default = fleetmesh;
      });

      # services.fleetmesh; its `package` defaults to ./nixos/package.nix built with the host's pkgs.
      nixosModules.default = import ./nixos/module.nix;
      nixosModules.fleetmesh = self.nixosModules.default;

      checks = forAllSystems (system: {
        package = self.packages.${system}.default;
        pair-and-rollout = import ./nixos/tests/pair-and-rollout.nix {
          pkgs = nixpkgs.legacyPackages.${system};
          module = self.nixosModules.default;
        };
      });
    };
}
