# beta: the secondary service-bearing host (NATS, keepalived with the lower
# VRRP priority, gate agent, controller when promoted, /artifacts).
{
  imports = [../../modules/roles/beta.nix ../common.nix];

  networking.hostName = "beta";

  # REPLACE: the seed's layout: JetStream on a dedicated NVMe, artifacts on
  # a RAID-backed volume, /opt/bsfg on the system disk (no device: a directory).
  services.bsfg.storage = {
    jetstream.device = "/dev/disk/by-label/jetstream";
    artifacts.device = "/dev/disk/by-label/artifacts";
  };
}
