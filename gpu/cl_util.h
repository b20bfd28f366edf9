/* gpu/cl_util: OpenCL plumbing shared by the OpenCL backend, `cmif info --devices` and the
 * device-selection policy: status-code names, a flat device list across platforms,
 * program building with an on-disk binary cache, and the write hook tests use to watch
 * every host→device copy. */
#ifndef CMIF_GPU_CL_UTIL_H
#define CMIF_GPU_CL_UTIL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <stddef.h>
#include <stdint.h>

/* Name of an OpenCL status (e.g. "CL_OUT_OF_RESOURCES"), or "CL_UNKNOWN_ERROR(-n)". */
const char *clu_status_name(cl_int st);
/* Name of a CLBlast status (its own codes and the OpenCL ones it forwards). */
const char *clu_blast_status_name(int st);
/* Statuses that mean the device ran out of memory. */
int clu_is_oom(cl_int st);

/* One OpenCL device; index is its position in the flat list (platforms in order, then
 * their devices), which is N in `--device cl:N`. */
struct clu_dev {
    int index;
    cl_platform_id platform;
    cl_device_id device;
    char platform_name[128];
    char name[128];
    char vendor[128];
    char version[128];          /* device OpenCL version */
    char driver[128];
    cl_device_type type;
    cl_ulong global_mem, max_alloc, local_mem;
    cl_uint compute_units;
    int fp16;                   /* cl_khr_fp16 */
    int usable;                 /* available, compiler present, OpenCL >= 1.2 */
    char why[128];              /* when not usable: the reason */
};

/* All devices of all platforms. 0 with *n possibly 0 (platforms without devices), -1 with
 * err when no platform can be found at all (no ICD, OCL_ICD_VENDORS pointing nowhere). */
int clu_devices(struct clu_dev **out, int *n, char *err, size_t errlen);
void clu_devices_free(struct clu_dev *d);
const char *clu_type_name(cl_device_type t);
/* Index of the first usable GPU (or accelerator), -1 when none or no platform. */
int clu_first_gpu(void);

/* Build `src` for one device, using the binary cache under $XDG_CACHE_HOME/cmif (else
 * ~/.cache/cmif). The key covers device name, driver version, build options and a hash of
 * the source; a corrupt or stale entry is rebuilt and replaced. *cached says whether the
 * binary came from the cache. */
int clu_build(cl_context ctx, const struct clu_dev *dev, const char *src, const char *opts,
              cl_program *out, int *cached, char *err, size_t errlen);
/* Directory used for the cache (no trailing slash); buf must hold 4096 bytes. */
const char *clu_cache_dir(char *buf, size_t n);
/* path and its parents made (mode 0700); 0 or -1. */
int clu_mkdirs(const char *path);

/* Kernel layout for devices opened from now on: -1 by device type (default), 0 the CPU
 * layout (one-item matvec groups, K-quants per block), 1 the GPU layout (64-item groups,
 * local-memory reductions). Tests use it to run the GPU kernels on PoCL. */
void clu_force_layout(int layout);
int clu_forced_layout(void);

/* Every host→device copy the backend makes goes through clu_write; a test hook sees each
 * one with what it carries. */
enum clu_write_kind { CLU_W_WEIGHTS = 0, CLU_W_INPUT = 1 };
typedef void (*clu_write_hook)(void *ctx, int kind, const void *src, size_t bytes);
void clu_set_write_hook(clu_write_hook fn, void *ctx);
cl_int clu_write(cl_command_queue q, cl_mem buf, size_t off, size_t bytes, const void *src,
                 int kind, int blocking);

#endif
