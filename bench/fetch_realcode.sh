#!/usr/bin/env bash
# Real source code of the languages the wheel mirrors lack (TypeScript, TSX, Java, Go, Rust, Lua), for
#     python -m bench.infill_quality realcode --sources ~/.cache/diffusion-infill/realcode
# A bench-time data step run by hand; the server and the tests never fetch anything.
#
#     bench/fetch_realcode.sh [DEST]      (default ~/.cache/diffusion-infill/realcode)
#
# Nothing is installed: Debian packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x`,
# npm packages with `npm pack` and only their source files (and licence) are taken out of the tarball. Each package
# lands in DEST/<language>/<name>-<version>/. Versions are pinned so that a later run draws the same files; all
# packages are MIT, BSD or Apache-2.0 licensed (their licence file comes along). These files are evaluation data:
# keep them out of any training set.
set -u

DEST="${1:-$HOME/.cache/diffusion-infill/realcode}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
failed=0

# language  package=version  (licence, from the package's debian/copyright)
DEBIAN_PACKAGES="
go    golang-github-pkg-errors-dev=0.9.1-2         BSD-2-Clause
go    golang-github-spf13-cobra-dev=1.6.1-1        Apache-2.0
go    golang-github-google-go-cmp-dev=0.5.9-1      BSD-3-Clause
go    golang-github-gorilla-mux-dev=1.8.0-1        BSD-3-Clause
go    golang-github-sirupsen-logrus-dev=1.9.0-1    MIT
rust  librust-anyhow-dev=1.0.69-1                  MIT/Apache-2.0
rust  librust-itertools-dev=0.10.3-1               MIT/Apache-2.0
rust  librust-smallvec-dev=1.9.0-1                 MIT/Apache-2.0
rust  librust-bytes-dev=1.2.1-1                    MIT
rust  librust-semver-dev=1.0.14-1                  MIT/Apache-2.0
lua   lua-penlight=1.13.1-3                        MIT
lua   lua-argparse=0.7.1-2                         MIT
lua   lua-busted=2.1.1-1                           MIT
lua   lua-luassert=1.9.0-1                         MIT
lua   lua-say=1.4.1-2                              MIT
"

# language  package@version  licence  source paths to take (tar wildcards)
NPM_PACKAGES="
typescript rxjs@7.8.2                              Apache-2.0 package/src/internal/*.ts
typescript @tanstack/query-core@5.108.0            MIT        package/src/*.ts
typescript zod@4.6.7                               MIT        package/src/v4/core/*.ts
tsx        react-native-svg@15.16.1                MIT        package/src/*.tsx
tsx        react-native-maps@1.29.11               MIT        package/src/*.tsx
tsx        @tanstack/react-query@5.108.0           MIT        package/src/*.tsx
java       react-native-svg@15.16.1                MIT        package/android/src/main/java/com/horcrux/*.java
java       react-native-maps@1.29.11               MIT        package/android/src/main/java/com/rnmaps/*.java
java       react-native-fs@2.20.0                  MIT        package/android/src/main/java/com/rnfs/*.java
java       react-native-device-info@15.0.2         MIT        package/android/src/main/java/com/learnium/*.java
"
# (the Java paths skip android/src/paper/ and com/facebook/: React Native codegen output, not hand-written code)

while read -r language spec licence; do
    [ -n "$language" ] || continue
    name="${spec%%=*}"; version="${spec#*=}"
    target="$DEST/$language/$name-$version"
    if [ -d "$target" ]; then echo "have $target"; continue; fi
    mkdir -p "$target"
    if (cd "$WORK" && apt-get download -q "$spec" >/dev/null 2>&1) && dpkg-deb -x "$WORK/${name}_"*.deb "$target"; then
        echo "$language: $spec ($licence) -> $target"
    else
        echo "fetch_realcode: could not download or unpack the Debian package $spec" >&2; rm -rf "$target"; failed=1
    fi
    rm -f "$WORK/${name}_"*.deb
done <<< "$DEBIAN_PACKAGES"

while read -r language spec licence pattern; do
    [ -n "$language" ] || continue
    target="$DEST/$language/$(echo "${spec#@}" | tr '/@' '--')"
    if [ -d "$target" ]; then echo "have $target"; continue; fi
    tarball="$(cd "$WORK" && npm pack --silent "$spec" 2>/dev/null | tail -n 1)"
    mkdir -p "$target"
    if [ -n "$tarball" ] && tar -xzf "$WORK/$tarball" -C "$target" --wildcards "$pattern" 'package/LICENSE*'; then
        echo "$language: $spec ($licence) -> $target"
    else
        echo "fetch_realcode: could not download or unpack the npm package $spec" >&2; rm -rf "$target"; failed=1
    fi
    [ -z "$tarball" ] || rm -f "$WORK/$tarball"
done <<< "$NPM_PACKAGES"

exit "$failed"
