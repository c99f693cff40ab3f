// Functions for C macros and variadic calls that Swift cannot import.
//
// Each wrapper is one line around the macro it names; nothing else belongs here.
#ifndef BODYCAM_SHIM_H
#define BODYCAM_SHIM_H

#include <stdint.h>
#include <x264.h>
#include <opus.h>
#include <linux/videodev2.h>
#include <libv4l2.h>

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
// Returns 1 when the kernel reports the wall clock synchronised (its maximum error under 16 s).
int bodycam_clock_synchronized(void);
/* fallocate(FALLOC_FL_KEEP_SIZE): reserves blocks past the end without changing the size. */
int bodycam_reserve_space(int fd, long long offset, long long length);

// linux/videodev2.h: ioctl request codes are function-like macros, e.g.
// `#define VIDIOC_DQBUF _IOWR('V', 17, struct v4l2_buffer)`, and pixel formats are
// `#define V4L2_PIX_FMT_NV12 v4l2_fourcc('N', 'V', '1', '2')`. One accessor per macro used.
unsigned long bodycam_vidioc_querycap(void);
unsigned long bodycam_vidioc_enum_fmt(void);
unsigned long bodycam_vidioc_g_fmt(void);
unsigned long bodycam_vidioc_s_fmt(void);
unsigned long bodycam_vidioc_reqbufs(void);
unsigned long bodycam_vidioc_querybuf(void);
unsigned long bodycam_vidioc_qbuf(void);
unsigned long bodycam_vidioc_dqbuf(void);
unsigned long bodycam_vidioc_streamon(void);
unsigned long bodycam_vidioc_streamoff(void);
unsigned long bodycam_vidioc_s_parm(void);
unsigned long bodycam_vidioc_s_input(void);
unsigned long bodycam_vidioc_enum_dv_timings(void);
unsigned long bodycam_vidioc_s_dv_timings(void);
uint32_t bodycam_v4l2_pix_fmt_nv12(void);
uint32_t bodycam_v4l2_pix_fmt_yuv420(void);
uint32_t bodycam_v4l2_pix_fmt_yuyv(void);

// libv4l2.h: `int v4l2_ioctl(int fd, unsigned long int request, ...)` is variadic.
int bodycam_v4l2_ioctl(int fd, unsigned long request, void *arg);
// `int v4l2_open(const char *file, int oflag, ...)` is variadic too.
int bodycam_v4l2_open(const char *path, int flags);

// GNU extensions Swift's Glibc module leaves out (they need _GNU_SOURCE).
int bodycam_eventfd(unsigned int initial, int nonblocking);
int bodycam_accept4_nonblocking(int fd);
int bodycam_set_thread_name(const char *name);
/// prctl(PR_SET_THP_DISABLE): no transparent huge pages for this process (prctl is variadic).
int bodycam_disable_thp(void);

#endif
