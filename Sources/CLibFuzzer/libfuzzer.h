// libFuzzer's driver entry point (compiler-rt, FuzzerInterface.h). Only the fuzz build, linked
// with -sanitize=fuzzer, calls it; nothing here is linked into the normal build.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));
