#!/usr/bin/env bash
# Two copies of dynkey-text in one binary must not build (issue 10, item 6).
#
# Both copies would decode the same `dynkey_sites_v1` records and take the
# other's keys for their own. A throwaway cargo project in a temp dir
# depends on two copies of this crate (versions 0.1 and 0.2, which cargo
# treats as semver-incompatible and would happily link together):
#   1. both copies declare `links = "dynkey_text"`: cargo refuses to resolve;
#   2. the second copy without `links` (what a non-cargo build looks like):
#      the link fails on the marker symbol that every used copy defines;
#   3. control: one copy alone builds and runs.
# Each failure must name dynkey. The build shares target/two-copies/ so a
# re-run is incremental; the first run compiles dynkey-text twice.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${DYNKEY_TEXT_SRC:-$root/crates/dynkey-text}
target=$root/target/two-copies
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A standalone copy of the crate at $1 with version $2; $3 = links or nolinks.
copy_crate() {
    local dest=$1 version=$2 links=$3
    mkdir -p "$dest"
    cp -r "$src/src" "$dest/"
    [ -f "$src/build.rs" ] && cp "$src/build.rs" "$dest/"
    python3 - "$root/Cargo.toml" "$src/Cargo.toml" "$dest/Cargo.toml" "$version" "$links" <<'PY'
import sys, tomllib
ws = tomllib.load(open(sys.argv[1], "rb"))["workspace"]["dependencies"]
krate = tomllib.load(open(sys.argv[2], "rb"))
out, version, links = sys.argv[3], sys.argv[4], sys.argv[5]
lines = ["[package]", 'name = "dynkey-text"', f'version = "{version}"', 'edition = "2024"']
if links == "links" and "links" in krate["package"]:
    lines.append(f'links = "{krate["package"]["links"]}"')
lines += ["", "[dependencies]"]
for name, spec in krate.get("dependencies", {}).items():
    v = ws[name] if isinstance(spec, dict) and spec.get("workspace") else spec
    v = v if isinstance(v, str) else v["version"]
    lines.append(f'{name} = "{v}"')
open(out, "w").write("\n".join(lines) + "\n")
PY
}

# An application using the copies named in $@ (dt1, dt2).
app() {
    local dir=$1; shift
    mkdir -p "$dir/src"
    {
        echo '[package]'
        echo 'name = "two-copies"'
        echo 'version = "0.0.0"'
        echo 'edition = "2024"'
        echo '[workspace]'
        echo '[dependencies]'
        for c in "$@"; do echo "$c = { package = \"dynkey-text\", path = \"../$c\" }"; done
    } >"$dir/Cargo.toml"
    {
        for c in "$@"; do
            echo "static K_$c: $c::RawKey = $c::RawKey::new(false);"
            echo "#[inline(never)] fn site_$c() -> bool { $c::branch_unlikely!(K_$c) }"
        done
        echo 'fn main() {'
        for c in "$@"; do
            echo "    println!(\"$c: site {} status {:?}\", site_$c(), $c::status().map(|s| s.site_kind));"
        done
        echo '}'
    } >"$dir/src/main.rs"
}

build() {
    local dir=$1 log=$2
    # --offline first: the registry cache usually has everything.
    (cd "$dir" && cargo build --offline --target-dir "$target" >"$log" 2>&1) ||
        { grep -q "offline" "$log" && (cd "$dir" && cargo build --target-dir "$target" >"$log" 2>&1); }
}

fail=0
copy_crate "$work/dt1" 0.1.0 links
copy_crate "$work/dt2" 0.2.0 links

echo "two-copies: control, one copy builds and runs"
app "$work/one" dt1
if build "$work/one" "$work/one.log"; then
    "$target/debug/two-copies" || { echo "two-copies: the one-copy program failed" >&2; fail=1; }
else
    cat "$work/one.log" >&2; echo "two-copies: one copy alone must build" >&2; fail=1
fi

echo "two-copies: both copies declare links = \"dynkey_text\""
app "$work/both" dt1 dt2
if build "$work/both" "$work/both.log"; then
    echo "two-copies: FAILED: cargo built two copies that both declare links" >&2
    "$target/debug/two-copies" >&2 || true
    fail=1
elif grep -q "dynkey_text" "$work/both.log"; then
    grep -m1 -B1 -A3 "links to the native library" "$work/both.log" || grep -m3 dynkey_text "$work/both.log"
else
    cat "$work/both.log" >&2; echo "two-copies: the failure does not name dynkey" >&2; fail=1
fi

echo "two-copies: the second copy without links (a non-cargo build)"
rm -rf "$work/dt2"
copy_crate "$work/dt2" 0.2.0 nolinks
if build "$work/both" "$work/nolinks.log"; then
    echo "two-copies: FAILED: two copies linked into one binary" >&2
    "$target/debug/two-copies" >&2 || true
    fail=1
elif grep -q "dynkey_text_is_linked_twice" "$work/nolinks.log"; then
    grep -m2 "dynkey_text_is_linked_twice" "$work/nolinks.log"
else
    cat "$work/nolinks.log" >&2; echo "two-copies: the link failure does not name dynkey" >&2; fail=1
fi

[ $fail -eq 0 ] && echo "two-copies: ok"
exit $fail
