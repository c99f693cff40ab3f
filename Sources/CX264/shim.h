// x264.h uses the <stdint.h> types without including it.
#include <stdint.h>
#include <x264.h>
