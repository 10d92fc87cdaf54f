# All BSFG zone modules. Importing this declares the options; nothing runs
# until a role module (roles/alpha.nix, beta.nix, gamma.nix) sets
# services.bsfg.enable and services.bsfg.role.
{
  imports = [
    ./zone.nix
    ./base.nix
    ./storage.nix
    ./firewall.nix
    ./observability.nix
    ./services/nats.nix
    ./services/keepalived.nix
    ./services/controller.nix
    ./services/gate-agent.nix
    ./services/backup.nix
    ./services/artifact-backup.nix
    ./services/probe.nix
  ];
}
