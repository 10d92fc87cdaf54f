# PLACEHOLDER hardware configuration, shared by the example hosts so that
# `nixos-rebuild build --flake .#alpha` evaluates out of the box.
#
# REPLACE for a real host: run `nixos-generate-config --show-hardware-config`
# on the machine and put its output into hosts/<host>/hardware.nix instead of
# the import of this file. Labels below match a disk layout made with
#   mkfs.vfat -n ESP /dev/<disk>1 ; mkfs.ext4 -L nixos /dev/<disk>2
{
  boot.loader.systemd-boot.enable = true;
  boot.loader.efi.canTouchEfiVariables = true;
  boot.initrd.availableKernelModules = ["nvme" "ahci" "xhci_pci" "usbhid" "sd_mod"];

  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  fileSystems."/boot" = {
    device = "/dev/disk/by-label/ESP";
    fsType = "vfat";
    options = ["fmask=0077" "dmask=0077"];
  };
}
