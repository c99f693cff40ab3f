#!/bin/sh
# HIL smoke scenario (guest, busybox sh): proves the rig with stock tools only.
#   video: v4l2-ctl selects vivid input 3 (HDMI), CEA-861 1280x720p30 DV timings, YUYV, streams
#          60 frames by mmap and measures the frame rate; keeps one frame in /out.
#   gpio:  gpiofind/gpioget/gpiomon on the named gpio-sim lines, a pull flipped through sysfs seen
#          by gpioget and as edges by gpiomon, gpioset --mode=signal read back from sysfs.
#   audio: aplay a known 1 kHz tone into hw:Loopback,0,0 while arecord captures hw:Loopback,1,0
#          (S16_LE, mono, 48 kHz); the capture must hold the tone bit for bit.
# Writes /out/smoke-summary.txt (PASS/FAIL lines, measurements); exits 0 only if all pass.
# shellcheck source=hil-lib.sh
. "$HIL_LIB"

SUMMARY=/out/smoke-summary.txt
pass=0
fail=0
ok() { echo "PASS $*" | tee -a "$SUMMARY"; pass=$((pass + 1)); }
bad() { echo "FAIL $*" | tee -a "$SUMMARY"; fail=$((fail + 1)); }
note() { echo "INFO $*" | tee -a "$SUMMARY"; }
check() { # DESCRIPTION COMMAND...
    d=$1
    shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
secs_since() { awk -v a="$1" -v b="$(hil_now_ms)" 'BEGIN { printf "%.2f", (b - a) / 1000 }'; }
: >"$SUMMARY"
t_all=$(hil_now_ms)

# --- video: vivid HDMI input at CEA-861 1280x720p30 -----------------------------------------------
V=$HIL_VIDEO
# V4L2_DV_BT_CEA_1280X720P30: 74.25 MHz, 3300x750 total -> exactly 30 fps.
CEA720P30=width=1280,height=720,interlaced=0,polarities=3,pixelclock=74250000,hfp=1760,hs=40,hbp=220,vfp=5,vs=5,vbp=20
t=$(hil_now_ms)
if v4l2-ctl -d "$V" --set-input=3 --set-dv-bt-timings="$CEA720P30" \
    --set-fmt-video=width=1280,height=720,pixelformat=YUYV >/tmp/v4l2-set.txt 2>&1; then
    ok "video: input 3, CEA-861 1280x720p30 timings, YUYV set"
else
    bad "video: setting input/timings/format failed: $(tr '\n' ' ' </tmp/v4l2-set.txt)"
fi
v4l2-ctl -d "$V" --get-input --get-dv-timings --get-fmt-video --get-parm >/out/v4l2-settings.txt 2>&1
note "video: set in $(secs_since "$t")s"
check "video: input is 3 (HDMI)" grep -q 'Video input : 3' /out/v4l2-settings.txt
check "video: format is 1280x720 YUYV" \
    sh -c "grep -q 'Width/Height *: 1280/720' /out/v4l2-settings.txt && grep -q YUYV /out/v4l2-settings.txt"
check "video: pixel clock 74250000 Hz (CEA-861 720p30)" grep -q 'Pixelclock: 74250000 Hz' /out/v4l2-settings.txt

t=$(hil_now_ms)
v4l2-ctl -d "$V" --verbose --stream-mmap=4 --stream-count=60 >/tmp/stream.txt 2>&1
s=$?
elapsed=$(secs_since "$t")
tr '\r' '\n' </tmp/stream.txt >/out/v4l2-stream.txt
# Frame rate from the buffers' CLOCK_MONOTONIC timestamps; drops from forward gaps in their sequence
# numbers. Under TCG vivid's thread sometimes wakes early and repeats a sequence number (then skips
# one later): repeats are counted apart, not as negative drops.
grep '^cap dqbuf' /out/v4l2-stream.txt | awk '{
    for (i = 1; i < NF; i++) { if ($i == "seq:") seq = $(i + 1); if ($i == "ts:") ts = $(i + 1) }
    if (n == 0) { t0 = ts; s0 = seq } else if (seq > last + 1) { drops += seq - last - 1 } else if (seq <= last) { repeats++ }
    n++; last = seq; t1 = ts
} END {
    fps = (n > 1 && t1 > t0) ? (n - 1) / (t1 - t0) : 0
    seqfps = (n > 1 && t1 > t0) ? (last - s0) / (t1 - t0) : 0
    printf "frames=%d fps=%.2f seq_fps=%.2f drops=%d repeats=%d first_ts=%s last_ts=%s\n", n, fps, seqfps, drops, repeats, t0, t1
}' >/out/v4l2-fps.txt
frames=$(sed -n 's/.*frames=\([0-9]*\).*/\1/p' /out/v4l2-fps.txt)
fps=$(sed -n 's/.* fps=\([0-9.]*\).*/\1/p' /out/v4l2-fps.txt)
seqfps=$(sed -n 's/.*seq_fps=\([0-9.]*\).*/\1/p' /out/v4l2-fps.txt)
drops=$(sed -n 's/.*drops=\([0-9]*\).*/\1/p' /out/v4l2-fps.txt)
repeats=$(sed -n 's/.*repeats=\([0-9]*\).*/\1/p' /out/v4l2-fps.txt)
if [ "$s" -eq 0 ] && [ "${frames:-0}" -ge 60 ]; then
    ok "video: streamed $frames frames by mmap in ${elapsed}s wall: ${fps} buffers/s and ${seqfps} frames/s by sequence over the buffer timestamps, $drops dropped, $repeats repeated sequence numbers"
else
    bad "video: streaming failed (exit $s, ${frames:-0} frames): $(tail -n 3 /out/v4l2-stream.txt | tr '\n' ' ')"
fi
check "video: frame rate >= 25 fps (${seqfps:-none})" awk -v f="${seqfps:-0}" 'BEGIN { exit !(f >= 25) }'
check "video: at most 3 of 60 frames dropped (${drops:-?})" [ "${drops:-99}" -le 3 ]
v4l2-ctl -d "$V" --stream-mmap=4 --stream-count=1 --stream-to=/out/frame-1280x720.yuyv >/dev/null 2>&1
size=$(wc -c </out/frame-1280x720.yuyv 2>/dev/null || echo 0)
check "video: one frame is 1280x720x2 = 1843200 bytes ($size)" [ "$size" -eq 1843200 ]

# --- gpio: named gpio-sim lines ---------------------------------------------------------------------
C=$HIL_GPIO_CHIP
gpioinfo "$C" >/out/gpioinfo.txt 2>&1
n=0
names_ok=1
for name in bodycam-record bodycam-marker bodycam-mute bodycam-dock bodycam-led-recording \
    bodycam-led-ready bodycam-led-warning bodycam-led-dock bodycam-haptic bodycam-buzzer bodycam-low-battery; do
    [ "$(gpiofind "$name")" = "$C $n" ] || { names_ok=0; bad "gpio: gpiofind $name is not '$C $n'"; }
    n=$((n + 1))
done
[ "$names_ok" -eq 1 ] && ok "gpio: gpiofind finds all 11 lines by name at offsets 0-10 of $C"
check "gpio: buttons read released (1 1 1) with their pull-ups, dock 0" [ "$(gpioget "$C" 0 1 2 3)" = "1 1 1 0" ]

hil_press record
# shellcheck disable=SC2046 # gpiofind prints "CHIP OFFSET": two arguments
v=$(gpioget $(gpiofind bodycam-record))
hil_release record
# shellcheck disable=SC2046
v2=$(gpioget $(gpiofind bodycam-record))
check "gpio: pull-down on record seen by gpioget ($v), pull-up again ($v2)" [ "$v$v2" = 01 ]
hil_pull dock up
v=$(gpioget "$C" "$HIL_OFFSET_DOCK")
hil_pull dock down
check "gpio: dock pulled up reads $v (docked), back down" [ "$v$(gpioget "$C" "$HIL_OFFSET_DOCK")" = 10 ]

# edges: gpiomon must hold the line before the pulls flip
gpiomon --num-events=2 "$C" "$HIL_OFFSET_MARKER" >/tmp/mon.txt 2>&1 &
mon=$!
i=0
until gpioinfo "$C" | grep -q '"bodycam-marker" *"gpiomon"'; do
    i=$((i + 1))
    [ $i -gt 100 ] && break
    sleep 0.05
done
t=$(hil_now_ms)
hil_press marker
sleep 0.1
hil_release marker
i=0
while kill -0 "$mon" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill "$mon" 2>/dev/null
wait "$mon" 2>/dev/null
cp /tmp/mon.txt /out/gpiomon.txt
check "gpio: gpiomon saw a falling then a rising edge on bodycam-marker" \
    sh -c "head -n1 /tmp/mon.txt | grep -q FALLING && sed -n 2p /tmp/mon.txt | grep -q RISING"

# outputs: held by gpioset --mode=signal (libgpiod 1.6 releases lines when gpioset exits)
gpioset --mode=signal "$C" 4=1 5=0 6=1 7=0 8=1 9=1 &
set_pid=$!
if hil_wait_value led-recording 1 3000; then
    got=""
    for l in led-recording led-ready led-warning led-dock haptic buzzer; do got="$got$(hil_value $l)"; done
    check "gpio: outputs 4-9 driven 1 0 1 0 1 1 read back from sysfs ($got)" [ "$got" = 101011 ]
else
    bad "gpio: bodycam-led-recording never read 1 while gpioset held it"
fi
kill "$set_pid"
wait "$set_pid" 2>/dev/null
check "gpio: led-recording back to 0 after gpioset released it" hil_wait_value led-recording 0 3000

# --- audio: snd-aloop loopback, bit-exact -----------------------------------------------------------
# 1 s of a 1 kHz square tone, amplitude 8000, S16_LE mono 48 kHz: 24 samples 0x1f40, 24 of 0xe0c0.
hi='\100\037' lo='\300\340' period=""
i=0
while [ $i -lt 24 ]; do period="$period$hi"; i=$((i + 1)); done
i=0
while [ $i -lt 24 ]; do period="$period$lo"; i=$((i + 1)); done
# shellcheck disable=SC2059 # the octal escapes are the point
printf "$period" >/tmp/tone.raw
i=0
while [ $i -lt 10 ]; do cat /tmp/tone.raw /tmp/tone.raw >/tmp/tone2.raw && mv /tmp/tone2.raw /tmp/tone.raw; i=$((i + 1)); done
head -c 96000 /tmp/tone.raw >/tmp/tone1s.raw
fmt="-f S16_LE -r 48000 -c 1 -t raw"
# shellcheck disable=SC2086
arecord -q -D "$HIL_ALSA_CAPTURE" $fmt -d 10 /tmp/capture.raw 2>/tmp/arecord.err &
rec=$!
i=0
until grep -q RUNNING /proc/asound/card"$HIL_ALSA_CARD"/pcm1c/sub0/status 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 100 ] && break
    sleep 0.05
done
t=$(hil_now_ms)
# shellcheck disable=SC2086
if aplay -q -D "$HIL_ALSA_PLAYBACK" $fmt /tmp/tone1s.raw 2>/tmp/aplay.err; then
    ok "audio: aplay played 1 s into $HIL_ALSA_PLAYBACK"
else
    bad "audio: aplay failed: $(cat /tmp/aplay.err)"
fi
sleep 0.3
kill -INT "$rec" 2>/dev/null
wait "$rec" 2>/dev/null
cp /tmp/capture.raw /out/capture-s16le-48k-mono.raw
captured=$(wc -c </tmp/capture.raw)
first=$(cmp /tmp/capture.raw /dev/zero 2>/dev/null | sed -n 's/.*differ: char \([0-9]*\).*/\1/p')
if [ -n "$first" ]; then
    tail -c +"$first" /tmp/capture.raw | head -c 96000 >/tmp/seg.raw
    if cmp -s /tmp/seg.raw /tmp/tone1s.raw; then
        ok "audio: capture holds the 1 s tone bit for bit, starting at byte $((first - 1)) ($(awk -v b="$first" 'BEGIN { printf "%.3f", (b - 1) / 96000 }') s into $captured bytes)"
    else
        bad "audio: capture has sound from byte $((first - 1)) but it is not the tone"
    fi
else
    bad "audio: capture is silent ($captured bytes): $(cat /tmp/arecord.err)"
fi

note "total smoke time $(secs_since "$t_all")s"
echo "passed=$pass failed=$fail" | tee -a "$SUMMARY"
[ "$fail" -eq 0 ]
