#define _GNU_SOURCE
#include "bodycam_shim.h"

#include <pthread.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/timex.h>

// Two malloc arenas for the whole process, set before main, before any thread allocates (glibc
// fixes its arena limit when the first thread after the main one calls malloc). By default a
// thread whose first malloc finds no arena free (more threads alive than ever before; libdispatch
// starts and ends workers as it likes) gets a new one, up to eight per core, and each arena keeps
// the memory freed into it. So a recorder's resident memory rose in steps at random times, once
// by a new 484 KiB arena minutes into a clip. The hot path does not allocate, so sharing two
// arenas does not slow it. An operator's own setting (MALLOC_ARENA_MAX, GLIBC_TUNABLES) wins.
__attribute__((constructor)) static void bodycam_limit_malloc_arenas(void) {
    if (getenv("MALLOC_ARENA_MAX") == NULL && getenv("GLIBC_TUNABLES") == NULL) mallopt(M_ARENA_MAX, 2);
}

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
    /* A refused call (seccomp, EPERM) says nothing about the clock: not trusted. */
    if (adjtimex(&tx) == -1) return 0;
    /* The kernel's maximum error below its 16 s limit (NTP_PHASE_LIMIT), as systemd reads it
       ("System clock synchronized"): STA_UNSYNC alone misleads, since chrony without rtcsync
       keeps it set (so the kernel leaves the RTC alone) on a well-synchronised clock. The
       bound grows 500 us a second without a time source, so the kernel itself stops vouching
       for the clock about 9 h after the last synchronisation. */
    return tx.maxerror < 16000000;
}

int bodycam_reserve_space(int fd, long long offset, long long length) {
    return fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length);
}

int bodycam_eventfd(unsigned int initial, int nonblocking) {
    return eventfd(initial, EFD_CLOEXEC | (nonblocking ? EFD_NONBLOCK : 0));
}

int bodycam_accept4_nonblocking(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK); }

int bodycam_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }

int bodycam_disable_thp(void) { return prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0); }

unsigned long bodycam_vidioc_querycap(void) { return VIDIOC_QUERYCAP; }
unsigned long bodycam_vidioc_enum_fmt(void) { return VIDIOC_ENUM_FMT; }
unsigned long bodycam_vidioc_g_fmt(void) { return VIDIOC_G_FMT; }
unsigned long bodycam_vidioc_s_fmt(void) { return VIDIOC_S_FMT; }
unsigned long bodycam_vidioc_reqbufs(void) { return VIDIOC_REQBUFS; }
unsigned long bodycam_vidioc_querybuf(void) { return VIDIOC_QUERYBUF; }
unsigned long bodycam_vidioc_qbuf(void) { return VIDIOC_QBUF; }
unsigned long bodycam_vidioc_dqbuf(void) { return VIDIOC_DQBUF; }
unsigned long bodycam_vidioc_streamon(void) { return VIDIOC_STREAMON; }
unsigned long bodycam_vidioc_streamoff(void) { return VIDIOC_STREAMOFF; }
unsigned long bodycam_vidioc_s_parm(void) { return VIDIOC_S_PARM; }
unsigned long bodycam_vidioc_s_input(void) { return VIDIOC_S_INPUT; }
unsigned long bodycam_vidioc_enum_dv_timings(void) { return VIDIOC_ENUM_DV_TIMINGS; }
unsigned long bodycam_vidioc_s_dv_timings(void) { return VIDIOC_S_DV_TIMINGS; }
uint32_t bodycam_v4l2_pix_fmt_nv12(void) { return V4L2_PIX_FMT_NV12; }
uint32_t bodycam_v4l2_pix_fmt_yuv420(void) { return V4L2_PIX_FMT_YUV420; }
uint32_t bodycam_v4l2_pix_fmt_yuyv(void) { return V4L2_PIX_FMT_YUYV; }

int bodycam_v4l2_ioctl(int fd, unsigned long request, void *arg) { return v4l2_ioctl(fd, request, arg); }
int bodycam_v4l2_open(const char *path, int flags) { return v4l2_open(path, flags); }
