#define _GNU_SOURCE
#include "bodycam_shim.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <sys/timex.h>

x264_t *bodycam_x264_encoder_open(x264_param_t *param) { return x264_encoder_open(param); }

int bodycam_opus_set_bitrate(OpusEncoder *enc, int32_t bitsPerSecond) {
    return opus_encoder_ctl(enc, OPUS_SET_BITRATE(bitsPerSecond));
}

int bodycam_opus_set_complexity(OpusEncoder *enc, int32_t complexity) {
    return opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(complexity));
}

int bodycam_opus_set_signal_voice(OpusEncoder *enc) {
    return opus_encoder_ctl(enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
}

int bodycam_opus_get_lookahead(OpusEncoder *enc, int32_t *samples) {
    opus_int32 v = 0;
    int r = opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&v));
    *samples = v;
    return r;
}

int bodycam_clock_synchronized(void) {
    struct timex tx = {0};
    int state = adjtimex(&tx);
    return state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0;
}

int bodycam_eventfd(unsigned int initial, int nonblocking) {
    return eventfd(initial, EFD_CLOEXEC | (nonblocking ? EFD_NONBLOCK : 0));
}

int bodycam_accept4_nonblocking(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK); }

int bodycam_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }
