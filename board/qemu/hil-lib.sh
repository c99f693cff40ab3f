# Guest helpers for HIL scenarios (busybox sh). In a scenario: . "$HIL_LIB"
# Lines are named as on the gpio-sim chip, with or without the "bodycam-" prefix:
#   hil_press record      # button down: pull-down (buttons are active-low)
#   hil_release record    # button up: pull-up
#   hil_value led-recording   # 0/1 as the line is now (an output driven by the program under test)
#   hil_wait_value led-recording 1 3000   # wait up to 3000 ms for the value; 0 if seen, 1 if not
#   hil_now_ms            # milliseconds since boot (CLOCK_BOOTTIME, from /proc/uptime)

hil_line_dir() {
    _hil_v=$(echo "${1#bodycam-}" | tr 'a-z-' 'A-Z_')
    eval "_hil_d=\${HIL_LINE_$_hil_v:-}"
    if [ -z "$_hil_d" ] || [ ! -d "$_hil_d" ]; then
        echo "hil: no gpio-sim line named '$1'" >&2
        return 1
    fi
    echo "$_hil_d"
}

hil_pull() { # NAME up|down
    _hil_d=$(hil_line_dir "$1") || return 1
    echo "pull-$2" >"$_hil_d/pull"
}
hil_press() { hil_pull "$1" down; }
hil_release() { hil_pull "$1" up; }
hil_value() {
    _hil_d=$(hil_line_dir "$1") || return 1
    cat "$_hil_d/value"
}

hil_now_ms() {
    read -r _hil_u _ </proc/uptime
    echo "$_hil_u" | awk '{ printf "%d\n", $1 * 1000 }'
}

hil_wait_value() { # NAME VALUE TIMEOUT_MS
    _hil_end=$(($(hil_now_ms) + ${3:-1000}))
    while :; do
        [ "$(hil_value "$1")" = "$2" ] && return 0
        [ "$(hil_now_ms)" -ge "$_hil_end" ] && return 1
        sleep 0.02
    done
}
