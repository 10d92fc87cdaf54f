# gamma: the quorum host. NATS only: no keepalived, no gate agent, no
# controller, no /artifacts (the modules assert it).
{
  imports = [../../modules/roles/gamma.nix ../common.nix];

  networking.hostName = "gamma";

  # REPLACE: JetStream on a dedicated NVMe.
  services.bsfg.storage.jetstream.device = "/dev/disk/by-label/jetstream";
}
