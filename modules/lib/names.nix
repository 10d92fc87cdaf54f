# Name grammar shared with the Rust side (crates/bsfg-core/src/names.rs).
#
# Zone, host, stream class, consumer, bucket and peer names end up inside
# NATS subjects, stream names and KV keys, so they must be NATS-token-safe:
# no `.`, `*`, `>`, whitespace or control characters. We use the same
# stricter grammar as bsfg-core's `check_token` (lower-case a-z, 0-9, '_'
# and '-', starting with a letter or digit) so a name that passes here also
# passes the controller's own validation.
let
  maxLen = 128; # bsfg-core limits.max_name_len default

  tokenRe = "[a-z0-9][a-z0-9_-]*";
  identityRe = "[A-Za-z0-9][A-Za-z0-9_.-]*";

  isToken = s:
    builtins.isString s
    && builtins.stringLength s <= maxLen
    && builtins.match tokenRe s != null;

  isIdentity = s:
    builtins.isString s
    && builtins.stringLength s <= maxLen
    && (s == "*" || builtins.match identityRe s != null);

  # Returns s, or throws naming what `s` is and why it is refused.
  checkToken = what: s:
    if isToken s
    then s
    else
      throw ("zone: ${what} ${builtins.toJSON s} is not a valid name: use a-z, 0-9, '_' and '-', "
        + "starting with a letter or digit, at most ${toString maxLen} characters "
        + "(names become NATS subject tokens, so '.', '*', '>' and whitespace are refused)");

  checkIdentity = what: s:
    if isIdentity s
    then s
    else throw "zone: ${what} ${builtins.toJSON s} is not a valid certificate identity (letters, digits, '-', '_' and '.', or \"*\")";
in {
  inherit isToken isIdentity checkToken checkIdentity maxLen;
}
