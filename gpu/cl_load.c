/* gpu/cl_load: OpenCL and CLBlast, loaded with dlopen when an OpenCL device is first used.

The binary does not link libOpenCL or libclblast: their loaders pull in the ICD's driver
(PoCL, and with it LLVM) and driver code mapped into the process runs inside the trust
boundary. So every OpenCL/CLBlast entry point cmif calls is defined here with the
library's own prototype, forwarding to the symbol resolved on first use; until then, and
when the libraries are missing, the calls fail the way an ICD loader without platforms
does (CL_PLATFORM_NOT_FOUND_KHR, or a NULL object with that error). --device cpu therefore
never maps a driver, and --device auto probes in a child process (cl_load_probe_gpu). */
#include "gpu/cl_load.h"

#include <errno.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gpu/cl_util.h" /* before clblast_c.h: fixes the OpenCL target version */
#include "gpu/probecache.h"

#include <clblast_c.h>

#define NOT_FOUND (-1001) /* CL_PLATFORM_NOT_FOUND_KHR */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void *g_cl, *g_blast;
static char g_err[256];
static int g_probe_child;   /* the probe's child: it lists devices only, CLBlast stays unloaded */

/* Every entry point, once: X(return type, value when not loaded, name, (prototype), (call)).
   The table declares the resolved pointers, resolves and clears them, and defines the
   forwarders, so a new entry point is one row. */
#define CL_ENTRY_POINTS(X)                                                                         \
    X(cl_int, NOT_FOUND, clGetDeviceInfo,                                                          \
      (cl_device_id device, cl_device_info param_name, size_t param_value_size, void *param_value, \
       size_t *param_value_size_ret),                                                             \
      (device, param_name, param_value_size, param_value, param_value_size_ret))                  \
    X(cl_int, NOT_FOUND, clFinish, (cl_command_queue command_queue), (command_queue))             \
    X(cl_int, NOT_FOUND, clEnqueueWriteBuffer,                                                     \
      (cl_command_queue command_queue, cl_mem buffer, cl_bool blocking_write, size_t offset,      \
       size_t size, const void *ptr, cl_uint num_events_in_wait_list,                             \
       const cl_event *event_wait_list, cl_event *event),                                         \
      (command_queue, buffer, blocking_write, offset, size, ptr, num_events_in_wait_list,         \
       event_wait_list, event))                                                                   \
    X(cl_int, NOT_FOUND, clEnqueueReadBuffer,                                                      \
      (cl_command_queue command_queue, cl_mem buffer, cl_bool blocking_read, size_t offset,       \
       size_t size, void *ptr, cl_uint num_events_in_wait_list, const cl_event *event_wait_list,  \
       cl_event *event),                                                                          \
      (command_queue, buffer, blocking_read, offset, size, ptr, num_events_in_wait_list,          \
       event_wait_list, event))                                                                   \
    X(cl_int, NOT_FOUND, clReleaseProgram, (cl_program program), (program))                       \
    X(cl_int, NOT_FOUND, clReleaseKernel, (cl_kernel kernel), (kernel))                           \
    X(cl_int, NOT_FOUND, clSetKernelArg,                                                           \
      (cl_kernel kernel, cl_uint arg_index, size_t arg_size, const void *arg_value),              \
      (kernel, arg_index, arg_size, arg_value))                                                   \
    X(cl_int, NOT_FOUND, clGetProgramInfo,                                                         \
      (cl_program program, cl_program_info param_name, size_t param_value_size,                   \
       void *param_value, size_t *param_value_size_ret),                                          \
      (program, param_name, param_value_size, param_value, param_value_size_ret))                 \
    X(cl_int, NOT_FOUND, clGetProgramBuildInfo,                                                    \
      (cl_program program, cl_device_id device, cl_program_build_info param_name,                 \
       size_t param_value_size, void *param_value, size_t *param_value_size_ret),                 \
      (program, device, param_name, param_value_size, param_value, param_value_size_ret))         \
    X(cl_int, NOT_FOUND, clGetPlatformIDs,                                                         \
      (cl_uint num_entries, cl_platform_id *platforms, cl_uint *num_platforms),                   \
      (num_entries, platforms, num_platforms))                                                    \
    X(cl_int, NOT_FOUND, clGetDeviceIDs,                                                           \
      (cl_platform_id platform, cl_device_type device_type, cl_uint num_entries,                  \
       cl_device_id *devices, cl_uint *num_devices),                                              \
      (platform, device_type, num_entries, devices, num_devices))                                 \
    X(cl_int, NOT_FOUND, clEnqueueNDRangeKernel,                                                   \
      (cl_command_queue command_queue, cl_kernel kernel, cl_uint work_dim,                        \
       const size_t *global_work_offset, const size_t *global_work_size,                          \
       const size_t *local_work_size, cl_uint num_events_in_wait_list,                            \
       const cl_event *event_wait_list, cl_event *event),                                         \
      (command_queue, kernel, work_dim, global_work_offset, global_work_size, local_work_size,    \
       num_events_in_wait_list, event_wait_list, event))                                          \
    X(cl_int, NOT_FOUND, clEnqueueFillBuffer,                                                      \
      (cl_command_queue command_queue, cl_mem buffer, const void *pattern, size_t pattern_size,   \
       size_t offset, size_t size, cl_uint num_events_in_wait_list,                               \
       const cl_event *event_wait_list, cl_event *event),                                         \
      (command_queue, buffer, pattern, pattern_size, offset, size, num_events_in_wait_list,       \
       event_wait_list, event))                                                                   \
    X(cl_kernel, not_found(errcode_ret), clCreateKernel,                                           \
      (cl_program program, const char *kernel_name, cl_int *errcode_ret),                         \
      (program, kernel_name, errcode_ret))                                                        \
    X(cl_context, not_found(errcode_ret), clCreateContext,                                         \
      (const cl_context_properties *properties, cl_uint num_devices,                              \
       const cl_device_id *devices,                                                               \
       void(CL_CALLBACK * pfn_notify)(const char *errinfo, const void *private_info, size_t cb,   \
                                      void *user_data),                                           \
       void *user_data, cl_int *errcode_ret),                                                     \
      (properties, num_devices, devices, pfn_notify, user_data, errcode_ret))                     \
    X(cl_mem, not_found(errcode_ret), clCreateBuffer,                                              \
      (cl_context context, cl_mem_flags flags, size_t size, void *host_ptr, cl_int *errcode_ret), \
      (context, flags, size, host_ptr, errcode_ret))                                              \
    X(cl_int, NOT_FOUND, clBuildProgram,                                                           \
      (cl_program program, cl_uint num_devices, const cl_device_id *device_list,                  \
       const char *options, void(CL_CALLBACK * pfn_notify)(cl_program program, void *user_data),  \
       void *user_data),                                                                          \
      (program, num_devices, device_list, options, pfn_notify, user_data))                        \
    X(cl_int, NOT_FOUND, clReleaseMemObject, (cl_mem memobj), (memobj))                           \
    X(cl_int, NOT_FOUND, clReleaseContext, (cl_context context), (context))                       \
    X(cl_int, NOT_FOUND, clReleaseCommandQueue, (cl_command_queue command_queue),                 \
      (command_queue))                                                                            \
    X(cl_int, NOT_FOUND, clGetPlatformInfo,                                                        \
      (cl_platform_id platform, cl_platform_info param_name, size_t param_value_size,             \
       void *param_value, size_t *param_value_size_ret),                                          \
      (platform, param_name, param_value_size, param_value, param_value_size_ret))                \
    X(cl_program, not_found(errcode_ret), clCreateProgramWithSource,                               \
      (cl_context context, cl_uint count, const char **strings, const size_t *lengths,            \
       cl_int *errcode_ret),                                                                      \
      (context, count, strings, lengths, errcode_ret))                                            \
    X(cl_program, not_found(errcode_ret), clCreateProgramWithBinary,                               \
      (cl_context context, cl_uint num_devices, const cl_device_id *device_list,                  \
       const size_t *lengths, const unsigned char **binaries, cl_int *binary_status,              \
       cl_int *errcode_ret),                                                                      \
      (context, num_devices, device_list, lengths, binaries, binary_status, errcode_ret))         \
    X(CL_API_PREFIX__VERSION_1_2_DEPRECATED cl_command_queue, not_found(errcode_ret),              \
      clCreateCommandQueue,                                                                       \
      (cl_context context, cl_device_id device, cl_command_queue_properties properties,           \
       cl_int *errcode_ret),                                                                      \
      (context, device, properties, errcode_ret))

/* CLBlast's entry points, the same way (no CL_API_CALL; not loaded: compiler not available). */
#define BLAST_ENTRY_POINTS(X)                                                                      \
    X(CLBlastSgemm,                                                                                \
      (const CLBlastLayout layout, const CLBlastTranspose a_transpose,                            \
       const CLBlastTranspose b_transpose, const size_t m, const size_t n, const size_t k,        \
       const float alpha, const cl_mem a_buffer, const size_t a_offset, const size_t a_ld,        \
       const cl_mem b_buffer, const size_t b_offset, const size_t b_ld, const float beta,         \
       cl_mem c_buffer, const size_t c_offset, const size_t c_ld, cl_command_queue *queue,        \
       cl_event *event),                                                                          \
      (layout, a_transpose, b_transpose, m, n, k, alpha, a_buffer, a_offset, a_ld, b_buffer,      \
       b_offset, b_ld, beta, c_buffer, c_offset, c_ld, queue, event))                             \
    X(CLBlastOverrideParameters,                                                                   \
      (const cl_device_id device, const char *kernel_name, const CLBlastPrecision precision,      \
       const size_t num_parameters, const char **parameters_names,                                \
       const size_t *parameters_values),                                                          \
      (device, kernel_name, precision, num_parameters, parameters_names, parameters_values))

#define CL_POINTER(ret, fail, name, params, args) static ret(CL_API_CALL *p_##name) params;
#define BLAST_POINTER(name, params, args) static CLBlastStatusCode(*p_##name) params;
CL_ENTRY_POINTS(CL_POINTER)
BLAST_ENTRY_POINTS(BLAST_POINTER)

#define RESOLVE(lib, name)                                                                         \
    do {                                                                                           \
        *(void **)&p_##name = dlsym(lib, #name);                                                   \
        if (!p_##name) {                                                                           \
            snprintf(g_err, sizeof g_err, "%s lacks %s", #lib, #name);                             \
            ok = 0;                                                                                \
        }                                                                                          \
    } while (0)
#define CL_RESOLVE(ret, fail, name, params, args) RESOLVE(g_cl, name);
#define BLAST_RESOLVE(name, params, args) RESOLVE(g_blast, name);
#define CL_CLEAR(ret, fail, name, params, args) p_##name = NULL;
#define BLAST_CLEAR(name, params, args) p_##name = NULL;

static void load(void)
{
    int ok = 1;
    g_cl = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!g_cl) {
        snprintf(g_err, sizeof g_err, "no OpenCL ICD loader (libOpenCL.so.1): %s", dlerror());
        return;
    }
    CL_ENTRY_POINTS(CL_RESOLVE)
    if (g_probe_child) return;
    g_blast = dlopen("libclblast.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!g_blast) {
        snprintf(g_err, sizeof g_err, "no CLBlast (libclblast.so.1): %s", dlerror());
        ok = 0;
    } else {
        BLAST_ENTRY_POINTS(BLAST_RESOLVE)
    }
    if (!ok) {
        /* All or nothing: a half-resolved table would fail in the middle of a model. */
        CL_ENTRY_POINTS(CL_CLEAR)
        BLAST_ENTRY_POINTS(BLAST_CLEAR)
    }
}

static void *not_found(cl_int *errcode_ret)
{
    if (errcode_ret) *errcode_ret = NOT_FOUND;
    return NULL;
}

int cl_load(char *err, size_t errlen)
{
    pthread_once(&g_once, load);
    if (p_clGetPlatformIDs) return 0;
    if (err && errlen) snprintf(err, errlen, "%s", g_err[0] ? g_err : "OpenCL not available");
    return -1;
}

int cl_load_loaded(void)
{
    return g_cl != NULL;
}

/* The probe's child and its answer: started once, collected once, kept (a GPU does not
 * appear in a running process). */
struct probe_msg {
    int idx;
    char why[200];
};
static pid_t g_probe_pid = -1;
static int g_probe_fd = -1, g_probe_done;
static struct probe_msg g_probe = {-1, ""};
static pthread_mutex_t g_probe_lock = PTHREAD_MUTEX_INITIALIZER;

static void probe_start_locked(void)
{
    if (g_probe_done || g_probe_pid > 0) return;
    if (probecache_no_gpu()) {
        /* An earlier run of this boot looked at the same drivers and devices. */
        g_probe_done = 1;
        return;
    }
    int fd[2];
    if (pipe(fd) != 0) return;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return;
    }
    if (pid == 0) {
        /* The child maps the driver, looks, reports and leaves: the parent never maps it. */
        close(fd[0]);
        g_probe_child = 1;
        struct probe_msg m = {-1, ""};
        struct clu_dev *d;
        int n;
        if (clu_devices(&d, &n, m.why, sizeof m.why) == 0) {
            clu_devices_free(d);
            m.why[0] = 0;
            m.idx = clu_first_gpu();
        }
        ssize_t w = write(fd[1], &m, sizeof m);
        _exit(w == (ssize_t)sizeof m ? 0 : 1);
    }
    close(fd[1]);
    g_probe_pid = pid;
    g_probe_fd = fd[0];
}

void cl_load_probe_start(void)
{
    pthread_mutex_lock(&g_probe_lock);
    probe_start_locked();
    pthread_mutex_unlock(&g_probe_lock);
}

int cl_load_probe_gpu(char *note, size_t cap)
{
    if (note && cap) note[0] = 0;
    pthread_mutex_lock(&g_probe_lock);
    probe_start_locked();
    if (!g_probe_done && g_probe_pid > 0) {
        struct probe_msg m = {-1, ""};
        ssize_t r;
        do
            r = read(g_probe_fd, &m, sizeof m);
        while (r < 0 && errno == EINTR);
        close(g_probe_fd);
        int st;
        while (waitpid(g_probe_pid, &st, 0) < 0 && errno == EINTR) {
        }
        g_probe_pid = -1;
        g_probe_fd = -1;
        if (r == (ssize_t)sizeof m) {
            m.why[sizeof m.why - 1] = 0;
            g_probe = m;
            probecache_store(m.idx < 0 && !m.why[0]);
        }
        g_probe_done = 1;
    }
    int idx = g_probe_done ? g_probe.idx : -1;
    if (g_probe_done && note && cap) snprintf(note, cap, "%s", g_probe.why);
    pthread_mutex_unlock(&g_probe_lock);
    return idx;
}

#define CL_FORWARD(ret, fail, name, params, args)                                                  \
    CL_API_ENTRY ret CL_API_CALL name params                                                       \
    {                                                                                              \
        if (cl_load(NULL, 0) != 0) return fail;                                                    \
        return p_##name args;                                                                      \
    }
#define BLAST_FORWARD(name, params, args)                                                          \
    CLBlastStatusCode PUBLIC_API name params                                                       \
    {                                                                                              \
        if (cl_load(NULL, 0) != 0) return CLBlastOpenCLCompilerNotAvailable;                       \
        return p_##name args;                                                                      \
    }
CL_ENTRY_POINTS(CL_FORWARD)
BLAST_ENTRY_POINTS(BLAST_FORWARD)
