#!/usr/bin/env bash
# asterisk/build.sh [PREFIX] -- the real Asterisk 22.10.1 the live tests run, built once and cached.
#
# Where the source comes from, first found wins (said plainly on stderr):
#   1. $ASTERISK_SOURCE: a .tar.gz of the 22.10.1 source, or a folder holding
#      asterisk-22.10.1.tar.gz, or an unpacked source tree (a folder with `configure`);
#   2. ../shared/asterisk/asterisk-22.10.1.tar.gz beside this repository (the workspace's copy),
#      or beside the main working tree when this is a linked git worktree;
#   3. the upstream release tarball, downloaded into the cache folder (unless PREFIX already
#      holds a kit build: then that one is used as it is, with no source and no network).
# The build itself is kit/build.sh (minimal: 49 modules, no SIP; about 2 minutes on 2 cores the
# first time, then a no-op while PREFIX's stamp matches). The last line printed is the binary.
set -euo pipefail

VERSION=22.10.1
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}"
PREFIX="${1:-$CACHE/asterisk-$VERSION-min}"
UPSTREAM="https://downloads.asterisk.org/pub/telephony/asterisk/releases/asterisk-$VERSION.tar.gz"
say() { echo "asterisk/build.sh: $*" >&2; }
# the main working tree when this is a linked git worktree (its .git is a file)
MAIN_TREE=""
if common="$(git -C "$HERE" rev-parse --path-format=absolute --git-common-dir 2>/dev/null)"; then
    MAIN_TREE="$(dirname "$common")"
fi

tarball=""
if [ -n "${ASTERISK_SOURCE:-}" ]; then
    if [ -f "$ASTERISK_SOURCE" ]; then
        tarball="$ASTERISK_SOURCE"
    elif [ -f "$ASTERISK_SOURCE/asterisk-$VERSION.tar.gz" ]; then
        tarball="$ASTERISK_SOURCE/asterisk-$VERSION.tar.gz"
    elif [ -f "$ASTERISK_SOURCE/configure" ]; then
        # kit/build.sh unpacks a tarball whose top folder holds `configure`: pack the tree once.
        tarball="$CACHE/asterisk-$VERSION-from-tree.tar.gz"
        if [ ! -f "$tarball" ] || [ -n "$(find "$ASTERISK_SOURCE" -newer "$tarball" -print -quit)" ]; then
            mkdir -p "$CACHE"
            tar -czf "$tarball" -C "$(dirname "$ASTERISK_SOURCE")" \
                --transform "s,^$(basename "$ASTERISK_SOURCE"),asterisk-$VERSION," \
                "$(basename "$ASTERISK_SOURCE")"
        fi
    else
        say "ASTERISK_SOURCE=$ASTERISK_SOURCE is neither a tarball nor a folder with the source"
        exit 1
    fi
    say "source: \$ASTERISK_SOURCE ($tarball)"
elif [ -f "$HERE/../../shared/asterisk/asterisk-$VERSION.tar.gz" ]; then
    tarball="$(cd "$HERE/../../shared/asterisk" && pwd)/asterisk-$VERSION.tar.gz"
    say "source: the workspace's copy ($tarball)"
elif [ -n "$MAIN_TREE" ] && [ -f "$MAIN_TREE/../shared/asterisk/asterisk-$VERSION.tar.gz" ]; then
    # a git worktree elsewhere: the workspace's copy is beside the main working tree
    tarball="$(cd "$MAIN_TREE/../shared/asterisk" && pwd)/asterisk-$VERSION.tar.gz"
    say "source: the workspace's copy beside the main worktree ($tarball)"
elif [ ! -f "$CACHE/asterisk-$VERSION.tar.gz" ] && [ -x "$PREFIX/sbin/asterisk" ] \
    && [ -f "$PREFIX/.asterisk-kit.stamp" ]; then
    # No source at hand, but a kit build is already there: use it rather than download.
    say "no source here; using the Asterisk already built in $PREFIX ($(cat "$PREFIX/.asterisk-kit.stamp"))"
    echo "$PREFIX/sbin/asterisk"
    exit 0
else
    tarball="$CACHE/asterisk-$VERSION.tar.gz"
    if [ ! -f "$tarball" ]; then
        say "source: no ASTERISK_SOURCE and no ../shared/asterisk: downloading $UPSTREAM"
        mkdir -p "$CACHE"
        curl -fsSL --retry 3 -o "$tarball.part" "$UPSTREAM"
        mv "$tarball.part" "$tarball"
    fi
    say "source: the upstream release tarball ($tarball)"
fi

ASTERISK_TARBALL="$tarball" exec "$HERE/kit/build.sh" "$PREFIX"
