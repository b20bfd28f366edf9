/* gpu/cl_load: OpenCL and CLBlast loaded with dlopen on first use, never linked, so a driver
 * (an ICD such as PoCL, and LLVM behind it) is mapped into cmif only when an OpenCL device is
 * actually used. The OpenCL/CLBlast functions cmif calls are defined in cl_load.c and forward
 * to the loaded libraries. */
#ifndef CMIF_GPU_CL_LOAD_H
#define CMIF_GPU_CL_LOAD_H

#include <stddef.h>

/* Loads the libraries (once). 0, or -1 with err saying what is missing. */
int cl_load(char *err, size_t errlen);
/* 1 once libOpenCL has been mapped into this process. */
int cl_load_loaded(void);
/* The first usable OpenCL GPU's index, found in a forked child so that this process maps no
 * driver when there is none (--device auto falling back to the CPU); -1 when there is none,
 * with note saying why when OpenCL itself is missing (no platform, no loader), else "". */
int cl_load_probe_gpu(char *note, size_t cap);
/* Starts that probe now and returns at once (the driver's start, ~0.1 s with PoCL, then
 * overlaps the caller's own start-up); cl_load_probe_gpu collects the answer. The answer is
 * kept: later calls return it without a new child. */
void cl_load_probe_start(void);

#endif
