// Functions for C macros and variadic calls that Swift cannot import.
//
// Each wrapper is one line around the macro it names; nothing else belongs here.
#ifndef BODYCAM_SHIM_H
#define BODYCAM_SHIM_H

#include <stdint.h>
#include <x264.h>
#include <opus.h>

// x264.h: `#define x264_encoder_open x264_encoder_glue2(x264_encoder_open_,X264_BUILD)`.
// The real symbol carries the ABI version (x264_encoder_open_164), so it is reached through this.
x264_t *bodycam_x264_encoder_open(x264_param_t *param);

// opus_defines.h: the encoder controls are variadic macros such as
// `#define OPUS_SET_BITRATE(x) OPUS_SET_BITRATE_REQUEST, __opus_check_int(x)`.
int bodycam_opus_set_bitrate(OpusEncoder *enc, int32_t bitsPerSecond);
int bodycam_opus_set_complexity(OpusEncoder *enc, int32_t complexity);
int bodycam_opus_set_signal_voice(OpusEncoder *enc);
int bodycam_opus_get_lookahead(OpusEncoder *enc, int32_t *samples);

// <sys/timex.h>: adjtimex(2) and STA_UNSYNC are not exposed by Swift's Glibc module.
// Returns 1 when the kernel reports the wall clock synchronised (no STA_UNSYNC, no TIME_ERROR).
int bodycam_clock_synchronized(void);

// GNU extensions Swift's Glibc module leaves out (they need _GNU_SOURCE).
int bodycam_eventfd(unsigned int initial, int nonblocking);
int bodycam_accept4_nonblocking(int fd);
int bodycam_set_thread_name(const char *name);

#endif
