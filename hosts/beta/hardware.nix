# REPLACE with this host's `nixos-generate-config --show-hardware-config`
# output (see ../placeholder-hardware.nix). Not used by the ISO image.
{
  imports = [../placeholder-hardware.nix];
}
