#!/bin/sh
# The bodycam end-to-end scenario of the VM rig (guest side, busybox sh, run by /init).
#
# Runs the real `bodycam run --board qemu` against vivid, snd-aloop and gpio-sim, and acts on it
# only through the kernel: button presses are gpio-sim pulls, the LED is read back from its line,
# the known sound is played into the ALSA loopback, the camera is taken away by unbinding vivid.
# Everything it sees goes to /out; board/qemu/check-hil judges it on the host.
. "$HIL_LIB"

BODYCAM=/usr/bin/bodycam
HIL=/usr/bin/bodycam-hil
D=/tmp/data
OUT=/out
R=$OUT/results.txt
mkdir -p "$OUT/clips"
: >"$R"

say() { echo "HIL: $*"; }
result() { echo "$1=$2" >>"$R"; say "$1=$2"; }
realtime() { "$HIL" now; }
status() { "$BODYCAM" ctl --data "$D" status --json 2>/dev/null | tr -d '\n'; }
# A status snapshot with the guest's wall time, one JSON object per line.
snapshot() { echo "{\"label\": \"$1\", \"real\": $(realtime), \"status\": $(status)}" >>"$OUT/status.jsonl"; }
state() { status | sed -n 's/.*"state" *: *"\([a-z]*\)".*/\1/p'; }
wait_state() { # STATE TIMEOUT_S
    i=0
    while [ "$i" -lt $(($2 * 5)) ]; do
        [ "$(state)" = "$1" ] && return 0
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}
# Presses as a person would: a double press is two 100 ms presses 200 ms apart.
double_press() { hil_press "$1"; sleep 0.1; hil_release "$1"; sleep 0.2; hil_press "$1"; sleep 0.1; hil_release "$1"; }
hold() { hil_press "$1"; sleep "$2"; hil_release "$1"; }

# 2. The recorder, on the VM board, sealing to an agency key made for this run (the key comes
#    out with the results so the host can open the clip; on a real device it never exists there).
"$BODYCAM" keygen --agency "$OUT/agency.key" >/dev/null 2>"$OUT/keygen.log"
result agency_key $?
cp /etc/hil/bodycam.toml /tmp/bodycam.toml
printf '\n[sealing]\nrecipient = "%s"\n' "$(cat "$OUT/agency.key.pub")" >>/tmp/bodycam.toml

# 1. A board file naming a GPIO line that does not exist: exit 78, naming the line.
sed 's/"bodycam-marker"/"bodycam-no-such-line"/' /etc/hil/qemu.toml >/tmp/bad-board.toml
"$BODYCAM" run --board /tmp/bad-board.toml --config /tmp/bodycam.toml --data /tmp/bad --for 2 >"$OUT/bad-board.log" 2>&1
result bad_board_exit $?

"$BODYCAM" run --board /etc/hil/qemu.toml --config /tmp/bodycam.toml --data "$D" >"$OUT/bodycam.log" 2>&1 &
PID=$!
if ! wait_state buffering 90; then
    result buffering no
    kill "$PID"
    exit 1
fi
result buffering yes
snapshot buffering

# 2b. The guest boots without NTP, so the kernel reports its clock unsynchronised: the warning LED
#     line flashes (100 ms in every 3 s) and status says why. Marked synchronised (what NTP or the
#     dock setting the time does), the light goes out at the recorder's next check (1 s) and stays
#     out, so the camera-loss checks below see the warning line with no other reason behind it.
snapshot clock_untrusted
"$HIL" watch "$(hil_line_dir led-warning)/value" 6.5 >"$OUT/warning-untrusted.txt" 2>&1
result clock_flashes "$(sed -n 's/^WATCH .*rises=\([0-9]*\).*/\1/p' "$OUT/warning-untrusted.txt")"
result clock_flash_ms "$(sed -n 's/^HIGH //p' "$OUT/warning-untrusted.txt" | tr '\n' ' ')"
"$HIL" clock-sync >"$OUT/clock-sync.txt" 2>&1
result clock_sync_exit $?
sleep 2
snapshot clock_trusted
"$HIL" watch "$(hil_line_dir led-warning)/value" 3.5 >"$OUT/warning-trusted.txt" 2>&1
result warning_after_sync "$(sed -n 's/^WATCH .*high=\([0-9]*\).*/\1/p' "$OUT/warning-trusted.txt")"

# 3. The known sound: 60 s of silence into the loopback with 1 kHz beeps 8, 14 and 20 s from now.
"$HIL" tone hw:Loopback,0,0 60 8 14 20 >"$OUT/beeps.txt" 2>"$OUT/tone.log" &
TONE=$!
sleep 3

# 4. Double press on the record line starts a clip; the recording LED line goes to 1.
double_press record
if hil_wait_value led-recording 1 3000; then result led_while_recording 1; else result led_while_recording 0; fi
result state_after_double_press "$(state)"
sleep 1
snapshot fps_start
sleep 10
snapshot fps_end

# 5. Take the camera away mid-recording (unbinding vivid is what a cable pull does to a USB
#    camera: the node disappears, open descriptors get ENODEV), then bring it back.
VIVID=$(basename "$(readlink /sys/class/video4linux/${HIL_VIDEO##*/}/device)")
result vivid_device "$VIVID"
echo "$VIVID" >/sys/bus/platform/drivers/vivid/unbind
result unbound_at "$(realtime)"
sleep 3
# No picture for 2 s: the warning LED line goes to 1 (allowing the encoder's queue to drain first).
if hil_wait_value led-warning 1 2000; then result warning_while_gone 1; else result warning_while_gone 0; fi
snapshot camera_gone
result bind_started_at "$(realtime)"
echo "$VIVID" >/sys/bus/platform/drivers/vivid/bind
result bound_at "$(realtime)"
before=$(status | sed -n 's/.*"frames_captured" *: *\([0-9]*\).*/\1/p')
i=0
while [ "$i" -lt 50 ]; do
    now=$(status | sed -n 's/.*"frames_captured" *: *\([0-9]*\).*/\1/p')
    if [ -n "$now" ] && [ -n "$before" ] && [ "$now" -gt "$before" ]; then break; fi
    sleep 0.1
    i=$((i + 1))
done
result frames_again_at "$(realtime)"
snapshot camera_back
sleep 4
if hil_wait_value led-warning 0 2000; then result warning_after_back 0; else result warning_after_back 1; fi

# 6. A 3 s hold on the record line stops the clip; the LED goes back to 0.
hold record 3.3
if hil_wait_value led-recording 0 3000; then result led_after_stop 0; else result led_after_stop 1; fi
result state_after_hold "$(state)"
snapshot stopped

# 7. The battery runs low: the low-battery line goes active and the recorder shuts down by itself
#    (as on SIGTERM). ctl stop only if it has not within 10 s. Then bring everything out.
hil_pull low-battery up
i=0
while kill -0 "$PID" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$PID" 2>/dev/null; then
    result stopped_by ctl
    "$BODYCAM" ctl --data "$D" stop
    i=0
    while kill -0 "$PID" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
else
    result stopped_by low-battery
fi
wait "$PID"
result bodycam_exit $?
kill "$TONE" 2>/dev/null
cp "$D"/clips/* "$OUT/clips/" 2>/dev/null
cp -r "$D/audit" "$OUT/audit" 2>/dev/null
ls -l "$OUT/clips" >"$OUT/clips.txt"
exit 0
