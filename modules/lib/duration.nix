# Durations in the humantime form the Rust binaries read ("250ms", "1s",
# "30d"). We only accept one number plus one unit: enough for every setting
# in the zone description, and simple enough to check in pure Nix so that the
# lease arithmetic the controller enforces at start-up fails at evaluation
# time instead, on the operator's workstation.
let
  unitMs = {
    ms = 1;
    s = 1000;
    m = 60000;
    h = 3600000;
    d = 86400000;
  };

  parse = s: let
    m =
      if builtins.isString s
      then builtins.match "([0-9]+)(ms|s|m|h|d)" s
      else null;
  in
    if m == null
    then null
    else (builtins.fromJSON (builtins.elemAt m 0)) * unitMs.${builtins.elemAt m 1};

  isDuration = s: parse s != null;

  # Throws naming the setting when `s` is not a duration.
  toMs = what: s: let
    v = parse s;
  in
    if v == null
    then throw "zone: ${what} = ${builtins.toJSON s} is not a duration: write a whole number and a unit (ms, s, m, h, d), e.g. \"250ms\" or \"30d\""
    else v;

  # 200 -> "0.2", 1000 -> "1", 1500 -> "1.5", 50 -> "0.05": keepalived's
  # advert_int takes seconds with up to two decimals (VRRPv3 centiseconds).
  msToSecondsString = ms: let
    whole = ms / 1000;
    centis = (ms - whole * 1000) / 10;
    frac =
      if centis == 0
      then ""
      else if centis < 10
      then ".0${toString centis}"
      else if centis - (centis / 10) * 10 == 0
      then ".${toString (centis / 10)}"
      else ".${toString centis}";
  in "${toString whole}${frac}";
in {
  inherit parse isDuration toMs msToSecondsString;
}
