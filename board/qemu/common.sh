# shellcheck shell=bash
# Host-side helpers shared by build-rig and run-vm (sourced, not run).
# Everything here works as root (CI) and as a normal user with sudo for apt.

# shellcheck disable=SC2034 # used by the scripts that source this
HIL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034
HIL_CACHE_DEFAULT="${BODYCAM_HIL_CACHE:-${HOME:-/root}/.cache/bodycam-hil}"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

# Messages go to the stderr the script started with (fd 8), even from inside a redirection.
exec 8>&2
hil_log() { printf '%s: %s\n' "${HIL_PROG:-hil}" "$*" >&8; }
hil_die() {
    printf '%s: error: %s\n' "${HIL_PROG:-hil}" "$*" >&8
    exit 1
}
hil_now() { date +%s.%N; }
hil_since() { awk -v a="$1" -v b="$(hil_now)" 'BEGIN { printf "%.1f", b - a }'; }

# Run as root: directly when we are root, else through sudo (never prompting without a terminal).
hil_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        if [ -t 0 ]; then sudo -- "$@"; else sudo -n -- "$@"; fi \
            || hil_die "'$*' needs root; run as root or give this user sudo (non-interactive: NOPASSWD)"
    else
        hil_die "'$*' needs root and sudo is not installed"
    fi
}

HIL_APT_UPDATED=0
hil_apt_update() {
    [ "$HIL_APT_UPDATED" -eq 1 ] && return 0
    hil_log "apt-get update"
    hil_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
        || hil_die "apt-get update failed"
    HIL_APT_UPDATED=1
}

hil_pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

# hil_apt_install PKG[=VERSION]...: installs those not installed yet (one apt-get update first if
# the install fails, since the package lists may be stale or absent on a fresh machine).
hil_apt_install() {
    local missing=() p
    for p in "$@"; do
        if [[ "$p" == *=* ]]; then
            [ "$(dpkg-query -W -f='${Version}' "${p%%=*}" 2>/dev/null || true)" = "${p#*=}" ] \
                && hil_pkg_installed "${p%%=*}" && continue
        else
            hil_pkg_installed "$p" && continue
        fi
        missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    hil_log "installing ${missing[*]}"
    local cmd=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}")
    if ! hil_root "${cmd[@]}" >/dev/null 2>"${HIL_TMP:-/tmp}/apt-install.err"; then
        hil_apt_update
        hil_root "${cmd[@]}" >/dev/null 2>"${HIL_TMP:-/tmp}/apt-install.err" || {
            cat "${HIL_TMP:-/tmp}/apt-install.err" >&2
            hil_die "apt-get install ${missing[*]} failed"
        }
    fi
}

# hil_apt_download DIR PKG=VERSION: the .deb into DIR (kept there; reused when present).
hil_apt_download() {
    local dir=$1 spec=$2 name=${2%%=*} ver=${2#*=} deb
    deb="$dir/${name}_${ver//:/%3a}_"
    compgen -G "$deb*.deb" >/dev/null && return 0
    local opts=(-q)
    [ "$(id -u)" -eq 0 ] && opts+=(-o APT::Sandbox::User=root)
    hil_log "downloading $spec"
    if ! (cd "$dir" && apt-get download "${opts[@]}" "$spec" >/dev/null 2>"$dir/.apt.err"); then
        hil_apt_update # stale lists: the mirror may have dropped that version
        (cd "$dir" && apt-get download "${opts[@]}" "$spec" >/dev/null 2>"$dir/.apt.err") || {
            cat "$dir/.apt.err" >&2
            hil_die "apt-get download $spec failed"
        }
    fi
    rm -f "$dir/.apt.err"
    compgen -G "$deb*.deb" >/dev/null || hil_die "apt-get download $spec left no ${deb}*.deb"
}

# Sets HIL_KVER (6.1.0-NN-amd64) and HIL_KDEBVER (the Debian version of that package).
# BODYCAM_HIL_KVER pins the kernel; otherwise it is whatever linux-image-amd64 depends on
# ("Depends: linux-image-6.1.0-NN-amd64 (= VERSION)": one apt-cache call, ~0.8 s).
# shellcheck disable=SC2034
hil_resolve_kernel() {
    local try dep pkg="" ver=""
    for try in 1 2; do
        if [ -n "${BODYCAM_HIL_KVER:-}" ]; then
            pkg="linux-image-$BODYCAM_HIL_KVER"
            ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
        else
            dep=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null | sed -n 's/^Depends: //p' | head -n1)
            pkg=$(grep -oE 'linux-image-[0-9.]+-[0-9]+-amd64' <<<"$dep" | head -n1 || true)
            ver=$(sed -nE "s/.*$pkg \(= ([^)]+)\).*/\1/p" <<<"$dep")
            if [ -n "$pkg" ] && [ -z "$ver" ]; then
                ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
            fi
        fi
        if [ -n "$pkg" ] && [ -n "$ver" ]; then
            HIL_KVER=${pkg#linux-image-}
            HIL_KDEBVER=$ver
            return 0
        fi
        [ "$try" -eq 1 ] && hil_apt_update
    done
    hil_die "cannot resolve the kernel: apt-cache knows no ${pkg:-dependency linux-image-6.1.0-NN-amd64 of linux-image-amd64} (is this Debian 12 with deb.debian.org in its sources?)"
}

# --- initramfs staging ------------------------------------------------------------------------

# A staging root with Debian's merged-/usr layout, so library paths that ldd prints
# (/lib/x86_64-linux-gnu/..., /lib64/ld-linux-x86-64.so.2) land where the loader looks.
hil_stage_init() {
    local s=$1
    mkdir -p "$s"/usr/bin "$s"/usr/sbin "$s"/usr/lib/x86_64-linux-gnu "$s"/usr/lib64 \
        "$s"/etc "$s"/proc "$s"/sys "$s"/dev "$s"/tmp "$s"/run "$s"/out "$s"/root "$s"/var
    ln -sfn usr/bin "$s/bin"
    ln -sfn usr/sbin "$s/sbin"
    ln -sfn usr/lib "$s/lib"
    ln -sfn usr/lib64 "$s/lib64"
    ln -sfn ../run "$s/var/run"
}

# hil_stage_file STAGE HOSTPATH GUESTPATH: a copy (symlinks followed), mode kept.
hil_stage_file() {
    local s=$1 src=$2 dst=$3
    [ -e "$src" ] || hil_die "--add: $src does not exist"
    [[ "$dst" == /* ]] || hil_die "--add: guest path '$dst' must be absolute"
    mkdir -p "$s$(dirname "$dst")"
    if [ -d "$src" ]; then
        mkdir -p "$s$dst"
        cp -RL --preserve=mode "$src/." "$s$dst/"
    else
        cp -L --preserve=mode "$src" "$s$dst"
    fi
}

# hil_stage_binary STAGE HOSTPATH [GUESTPATH]: the binary (default /usr/bin/NAME), every shared
# library ldd lists for it at the path ldd prints, and the dynamic loader.
hil_stage_binary() {
    local s=$1 src=$2 dst=${3:-/usr/bin/$(basename "$2")} out line lib
    [ -f "$src" ] || hil_die "--add-binary: $src is not a file"
    [ -x "$src" ] || hil_die "--add-binary: $src is not executable"
    hil_stage_file "$s" "$src" "$dst"
    if [ "${HIL_STRIP:-0}" = 1 ]; then
        strip "$s$dst" 2>/dev/null || hil_log "strip $src failed; kept it as it is"
    fi
    if ! out=$(ldd "$src" 2>&1); then
        case "$out" in
        *"not a dynamic executable"* | *"statically linked"*) return 0 ;;
        *) hil_die "--add-binary: ldd $src failed: $out" ;;
        esac
    fi
    case "$out" in *"statically linked"*) return 0 ;; esac
    while IFS= read -r line; do
        case "$line" in
        *"=> not found"*) hil_die "--add-binary: $src needs ${line%% =>*}, not found on this host (install its package)" ;;
        *"=> /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
        *linux-vdso* | *linux-gate*) continue ;;
        *) lib=$(printf '%s\n' "$line" | awk '$1 ~ /^\// { print $1 }') ;;
        esac
        [ -n "$lib" ] || continue
        [ -e "$s$lib" ] || hil_stage_file "$s" "$lib" "$lib"
    done <<<"$out"
}

# Applies a list of "add:HOST:GUEST" / "bin:HOST[:GUEST]" specs to a staging root.
hil_stage_specs() {
    local s=$1 spec kind rest host guest
    shift
    for spec in "$@"; do
        kind=${spec%%:*} rest=${spec#*:}
        case "$kind" in
        add)
            [[ "$rest" == *:* ]] || hil_die "--add wants HOSTPATH:GUESTPATH, got '$rest'"
            host=${rest%%:*} guest=${rest#*:}
            hil_stage_file "$s" "$host" "$guest"
            ;;
        bin)
            host=${rest%%:*} guest=""
            [[ "$rest" == *:* ]] && guest=${rest#*:}
            hil_stage_binary "$s" "$host" "$guest"
            ;;
        esac
    done
}

# hil_mkcpio STAGE OUT.cpio.gz: a newc archive owned by root, gzip -1 (fast to make and to unpack
# under TCG). Written next to OUT and renamed, so a reader never sees half a file.
hil_mkcpio() {
    local s=$1 out=$2
    (cd "$s" && find . -mindepth 1 -print0 | LC_ALL=C sort -z \
        | cpio --null -o -H newc -R +0:+0 --reproducible --quiet) | gzip -1 >"$out.part" \
        || hil_die "making $out from $s failed"
    mv -f "$out.part" "$out"
}
