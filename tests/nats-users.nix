# The VM tests' NATS users: fixed test-only passwords with their bcrypt
# hashes (cost 11). The hashes go into tests/zone.nix (nats-server's
# configuration); tests/common.nix installs the passwords where
# nats.users.<daemon>.passwordFile says, as a site installs its own.
# A test-only secret in the Nix store is fine; a site's never is
# (hosts/zone.nix says how to make real ones). A Rust test checks that each
# hash is the bcrypt of its password (crates/bsfg-zonesim/tests/rendered_files.rs).
{
  controller = {
    password = "vm-test-nats-controller-password";
    passwordHash = "$2b$11$XFe9ZFhipJuhXLRzrQ9hLe/J.30P5WXV/uuSWss4V8KMnSmnXoU3W";
  };
  gateAgent = {
    password = "vm-test-nats-gate-agent-password";
    passwordHash = "$2b$11$SrmI/w5F2YukaHC154klh.7xTSHbk82N9ThFDI7YGXv4.Yknz4YiS";
  };
}
