# A daemon's configuration file, checked at build time by the daemon itself
# (like nixpkgs' services.nats.validateConfig): a system whose controller or
# agent would refuse its configuration at start-up does not build.
{
  lib,
  pkgs,
}: {
  # The daemon's name: the store files are NAME.toml and NAME-checked.toml.
  name,
  text,
  # When false, the text is written unchecked (cross builds, or a package
  # that cannot run on the build machine).
  validate,
  package,
  exe,
  # Arguments after `--config FILE` that make the daemon check and exit.
  checkArgs,
}: let
  raw = pkgs.writeText "${name}.toml" text;
in
  if validate
  then
    pkgs.runCommand "${name}-checked.toml" {} ''
      ${lib.getExe' package exe} --config ${raw} ${builtins.concatStringsSep " " (map lib.escapeShellArg checkArgs)}
      ln -s ${raw} $out
    ''
  else raw
