# TOML text of a plain attribute set (builtins only), so that the appliance
# and the zone simulator deploy the same bytes: the NixOS modules write this
# text to the Nix store, the simulator writes it to its run directory.
#
# Scalars of a table come before its sub-tables (TOML requires it); keys are
# sorted (builtins.attrNames order); lists of attribute sets become inline
# tables. `null` has no TOML form and is refused, naming the key. Strings use
# JSON escapes, which are TOML basic-string escapes.
let
  inherit (builtins) attrNames concatStringsSep filter isAttrs isBool isFloat isInt isList isString toJSON;

  key = k:
    if builtins.match "[A-Za-z0-9_-]+" k != null
    then k
    else toJSON k;

  path = keys: concatStringsSep "." (map key keys);

  value = where: v:
    if v == null
    then throw "toml: ${where} is null, which TOML cannot express"
    else if isBool v
    then
      (
        if v
        then "true"
        else "false"
      )
    else if isInt v
    then toString v
    else if isFloat v
    then throw "toml: ${where} is a float; write durations and sizes as strings"
    else if isString v
    then toJSON v
    else if isList v
    then "[${concatStringsSep ", " (map (value "${where}[]") v)}]"
    else if isAttrs v
    then "{ ${concatStringsSep ", " (map (k: "${key k} = ${value "${where}.${k}" v.${k}}") (attrNames v))} }"
    else throw "toml: ${where} has a type TOML cannot express";

  table = keys: attrs: let
    names = attrNames attrs;
    where = k:
      if keys == []
      then k
      else "${path keys}.${k}";
    scalars = filter (k: !(isAttrs attrs.${k})) names;
    tables = filter (k: isAttrs attrs.${k}) names;
    scalarLines = map (k: "${key k} = ${value (where k) attrs.${k}}\n") scalars;
    subTables = map (k: "\n[${path (keys ++ [k])}]\n" + table (keys ++ [k]) attrs.${k}) tables;
  in
    concatStringsSep "" (scalarLines ++ subTables);

  # The document; starts with the root table's scalars.
  render = attrs:
    if !(isAttrs attrs)
    then throw "toml: a document must be an attribute set"
    else let
      text = table [] attrs;
    in
      # No leading blank line when the root has only tables.
      if builtins.substring 0 1 text == "\n"
      then builtins.substring 1 (builtins.stringLength text) text
      else text;
in {
  inherit render;
}
