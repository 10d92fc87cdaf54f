# alpha: the primary service-bearing host (NATS, keepalived with the higher
# VRRP priority, gate agent, controller when promoted, /artifacts).
{
  imports = [../../modules/roles/alpha.nix ../common.nix];

  networking.hostName = "alpha";

  # REPLACE: the seed's layout: JetStream on a dedicated NVMe, artifacts on
  # a RAID-backed volume, /opt/bsfg on the system disk (no device: a directory).
  services.bsfg.storage = {
    jetstream.device = "/dev/disk/by-label/jetstream";
    artifacts.device = "/dev/disk/by-label/artifacts";
  };
}
