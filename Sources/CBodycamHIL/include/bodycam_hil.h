#ifndef BODYCAM_HIL_H
#define BODYCAM_HIL_H

// What bodycam-hil (the VM rig's guest tool, never installed) needs from C headers Swift's Glibc
// module does not expose.

// <sys/timex.h>: tells the kernel its clock is synchronised, as an NTP daemon does (clears
// STA_UNSYNC, maximum and estimated error 0). Returns adjtimex's clock state (TIME_OK = 0 ...,
// TIME_ERROR = 5), or -1 with errno set.
int bodycam_hil_mark_clock_synchronized(void);

#endif
