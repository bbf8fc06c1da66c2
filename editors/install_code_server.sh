#!/bin/sh
# Installs what the VS Code editor test needs, all under one git-ignored cache folder, and builds the extension:
#   - Debian's chromium, chromium-driver (the browser selenium drives), libkrb5-dev and ripgrep (code-server's
#     install needs them), when missing and apt-get can be used;
#   - code-server 4.100.3 (VS Code 1.100.3, the last release that runs on Node 20) from npm, into the user's cache
#     (~/.cache/diffusion-infill, or $INFILL_EDITOR_CACHE): 300 MB and the same for every checkout, so a second clone
#     does not install it again (as Playwright keeps its browsers); CACHE_DIR/code-server links to it;
#   - the extension in editors/vscode: npm ci, tsc, vsce package (while code-server installs), then installed into
#     code-server's extensions folder.
#
#   editors/install_code_server.sh [CACHE_DIR]     # default: editors/.cache/vscode
#
# Re-runs take a second: code-server, the extension's node_modules and the extension itself are reinstalled only
# when their version, the lock file or the extension's sources changed. Two runs at once install code-server once.
# On success the last line is `ready: CACHE_DIR`.
set -eu

CODE_SERVER_VERSION="4.100.3"
# @vscode/ripgrep's postinstall downloads this archive from GitHub; we hand it Debian's rg instead.
RIPGREP_ARCHIVE="vscode-ripgrep-cache-1.15.11/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"

here="$(cd "$(dirname "$0")" && pwd)"
extension_dir="$here/vscode"
cache="${1:-$here/.cache/vscode}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
export TMPDIR="$cache/tmp"      # npm, node-gyp and code-server leave files and sockets there, not in /tmp
mkdir -p "$TMPDIR"

say() { echo "install_code_server: $*"; }

# ---- system packages ------------------------------------------------------------------------------------------------
missing=""
for pair in chromium:/usr/bin/chromium chromium-driver:/usr/bin/chromedriver ripgrep:/usr/bin/rg \
            libkrb5-dev:/usr/include/gssapi/gssapi.h; do
    [ -e "${pair#*:}" ] || missing="$missing ${pair%%:*}"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        say "missing Debian packages:$missing (run as root on Debian, or: sudo apt-get install$missing)" >&2
        exit 2
    fi
    say "apt-get install$missing"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing; } \
        >"$cache/apt.log" 2>&1 || {
        tail -n 20 "$cache/apt.log" >&2
        say "apt-get install failed (log: $cache/apt.log)" >&2
        exit 3
    }
fi

# ---- the extension's .vsix (built meanwhile: npm ci, tsc, vsce package) --------------------------------------------
# Rebuilt only when something that goes into the .vsix changed since the last run.
vsix="$cache/diffusion-infill.vsix"
sources_hash="$(cd "$extension_dir" && cat package.json package-lock.json tsconfig.json .vscodeignore README.md \
    $(find src -type f | sort) | sha256sum | cut -d' ' -f1)"
installed_dir="$cache/extensions/diffusion-infill.diffusion-infill-$(node -p 'require(process.argv[1]).version' \
    "$extension_dir/package.json")"
build_extension() {
    lock_hash="$(sha256sum "$extension_dir/package-lock.json" | cut -d' ' -f1)"
    if [ "$(cat "$extension_dir/node_modules/.lock-hash" 2>/dev/null)" != "$lock_hash" ]; then
        say "npm ci in editors/vscode"
        (cd "$extension_dir" && npm ci --no-audit --no-fund) >"$cache/extension-npm.log" 2>&1 || {
            tail -n 30 "$cache/extension-npm.log" >&2
            say "npm ci failed (log: $cache/extension-npm.log)" >&2
            return 5
        }
        echo "$lock_hash" >"$extension_dir/node_modules/.lock-hash"
    fi
    say "building the extension"
    (cd "$extension_dir" && npm run --silent package -- -o "$vsix") >"$cache/extension-build.log" 2>&1 || {
        tail -n 30 "$cache/extension-build.log" >&2
        say "building the extension failed (log: $cache/extension-build.log)" >&2
        return 6
    }
}
build_pid=""
if [ "$(cat "$cache/extension.stamp" 2>/dev/null)" != "$sources_hash" ] || [ ! -d "$installed_dir" ]; then
    rm -f "$cache/extension.stamp"
    build_extension &
    build_pid=$!
fi

# ---- code-server ----------------------------------------------------------------------------------------------------
shared="${INFILL_EDITOR_CACHE:-${XDG_CACHE_HOME:-${HOME:-$cache}/.cache}/diffusion-infill}"
if ! mkdir -p "$shared" 2>/dev/null || [ ! -w "$shared" ]; then   # a read-only or missing home: this checkout's
    say "cannot write $shared (set INFILL_EDITOR_CACHE to share code-server elsewhere): installing it under $cache"
    shared="$cache/shared"
    mkdir -p "$shared"
fi
shared="$(cd "$shared" && pwd)"
install_dir="$shared/code-server-$CODE_SERVER_VERSION"
code_server="$install_dir/node_modules/.bin/code-server"
complete="$install_dir/.complete"   # written last: a half-finished install (killed, failed) is not taken for one
if [ ! -e "$complete" ]; then
    exec 9>"$shared/.install-lock"
    flock 9   # another checkout's run may be installing it now: wait for it, then take what it installed
    if [ ! -e "$complete" ]; then
        say "npm install code-server@$CODE_SERVER_VERSION into $install_dir (one to three minutes)"
        rm -rf "$install_dir"
        mkdir -p "$install_dir" "$TMPDIR/$(dirname "$RIPGREP_ARCHIVE")"
        tar czf "$TMPDIR/$RIPGREP_ARCHIVE" -C /usr/bin rg
        echo '{"name": "code-server-for-tests", "private": true}' >"$install_dir/package.json"
        # npm_config_yes: node-pty's build runs npx, and this machine's npmrc says yes=false.
        (cd "$install_dir" && npm_config_yes=true npm install --no-save --unsafe-perm --foreground-scripts \
            --no-audit --no-fund "code-server@$CODE_SERVER_VERSION" >"$cache/code-server-install.log" 2>&1) || {
            tail -n 30 "$cache/code-server-install.log" >&2
            say "npm install code-server failed (log: $cache/code-server-install.log)" >&2
            rm -rf "$install_dir"
            [ -n "$build_pid" ] && wait "$build_pid" || true
            exit 4
        }
        touch "$complete"
    fi
    exec 9>&-
fi
# The test starts CACHE_DIR/code-server/...: a link to the shared install (a folder there is an older layout's).
if [ ! -L "$cache/code-server" ] || [ "$(readlink "$cache/code-server")" != "$install_dir" ]; then
    rm -rf "$cache/code-server"
    ln -s "$install_dir" "$cache/code-server"
fi

# ---- the extension, installed into code-server's extensions folder ---------------------------------------------------
if [ -n "$build_pid" ]; then
    build_status=0
    wait "$build_pid" || build_status=$?
    [ "$build_status" = 0 ] || exit "$build_status"
    rm -rf "$cache/extensions"
    "$code_server" --user-data-dir "$cache/user-data" --extensions-dir "$cache/extensions" \
        --install-extension "$vsix" --force >"$cache/extension-install.log" 2>&1 || {
        cat "$cache/extension-install.log" >&2
        say "code-server could not install $vsix" >&2
        exit 7
    }
    echo "$sources_hash" >"$cache/extension.stamp"
fi
say "code-server $CODE_SERVER_VERSION: $code_server"
say "extension: $vsix"
echo "ready: $cache"
