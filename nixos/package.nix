# fleetmesh built from this repository with nixpkgs' buildNpmPackage:
#   pkgs.callPackage ./nixos/package.nix { }      (the flake's packages.<system>.default)
#
# The dependencies come from importNpmLock: one fixed-output fetch per package of the lock,
# checked against the lock's own integrity hash. So there is no npmDepsHash to keep in step with
# package-lock.json (fetchNpmDeps' single hash of its whole cache could only be learnt by
# building once with nixpkgs, which the machines that build this repository cannot fetch).
{ buildNpmPackage, importNpmLock, nodejs_24, makeWrapper, lib }:

let
  root = ../.;
  packageJson = builtins.fromJSON (builtins.readFile (root + "/package.json"));
  lock = builtins.fromJSON (builtins.readFile (root + "/package-lock.json"));

  # .npmrc sets omit-lockfile-registry-resolved, so the lock names no tarball URLs, and
  # importNpmLock fetches only packages with a `resolved` URL: `npm ci` would then run offline
  # without them. The registry URL of a package is a function of its name and
  # version, so it is put back here (builtins only: the tests evaluate it without nixpkgs).
  nameOf = key: p: p.name or (builtins.elemAt (builtins.match "(.*node_modules/)?(.+)" key) 1);
  baseOf = name: builtins.elemAt (builtins.match "(@[^/]+/)?([^/]+)" name) 1;
  withResolved = key: p:
    if key == "" || p ? resolved || (p.link or false) || (p.inBundle or false) then p
    else p // { resolved = "https://registry.npmjs.org/${nameOf key p}/-/${baseOf (nameOf key p)}-${p.version}.tgz"; };
  npmLock = lock // { packages = builtins.mapAttrs withResolved lock.packages; };

  skip = [ "node_modules" "dist" "out" ".git" ".ci" ".fleetmesh" "result" ];
  src = builtins.path {
    path = root;
    name = "fleetmesh-source";
    filter = path: _type: !(builtins.elem (baseNameOf path) skip);
  };
in
buildNpmPackage {
  pname = packageJson.name;
  inherit (packageJson) version;
  nodejs = nodejs_24;

  inherit src;
  # its config hook puts this lock (its URLs turned into the fetched store paths) in the source
  npmDeps = importNpmLock { npmRoot = src; package = packageJson; packageLock = npmLock; };
  npmConfigHook = importNpmLock.npmConfigHook;

  # Install scripts download binaries (the `node` and `deno` dev packages): none run in the
  # sandbox (npm ci already skips them). classic-level's native addon ships prebuilt for Linux.
  npmRebuildFlags = [ "--ignore-scripts" ];
  npmBuildScript = "build";

  nativeBuildInputs = [ makeWrapper ];

  # npm pack (buildNpmPackage's default install) honours .gitignore, which leaves out dist/,
  # the compiled CLI the bin script runs: the files it needs are copied instead.
  installPhase = ''
    runHook preInstall
    npm prune --omit=dev --no-save
    mkdir -p $out/lib/fleetmesh/node/bin $out/bin
    cp -r package.json dist node_modules $out/lib/fleetmesh/
    cp node/bin/fleetmesh.js $out/lib/fleetmesh/node/bin/
    makeWrapper ${nodejs_24}/bin/node $out/bin/fleetmesh --add-flags $out/lib/fleetmesh/node/bin/fleetmesh.js
    runHook postInstall
  '';

  # The lock as fetched and built, for the repository's tests (they read it without nixpkgs).
  passthru = { inherit npmLock; };

  meta = {
    inherit (packageJson) description;
    license = lib.licenses.mit;
    mainProgram = "fleetmesh";
    platforms = lib.platforms.linux;
  };
}
