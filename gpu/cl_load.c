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

#include <clblast_c.h>

#define NOT_FOUND (-1001) /* CL_PLATFORM_NOT_FOUND_KHR */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void *g_cl, *g_blast;
static char g_err[256];

static cl_int(CL_API_CALL *p_clGetDeviceInfo)(cl_device_id device, cl_device_info param_name,
                                              size_t param_value_size, void *param_value,
                                              size_t *param_value_size_ret);
static cl_int(CL_API_CALL *p_clFinish)(cl_command_queue command_queue);
static cl_int(CL_API_CALL *p_clEnqueueWriteBuffer)(cl_command_queue command_queue, cl_mem buffer,
                                                   cl_bool blocking_write, size_t offset,
                                                   size_t size, const void *ptr,
                                                   cl_uint num_events_in_wait_list,
                                                   const cl_event *event_wait_list,
                                                   cl_event *event);
static cl_int(CL_API_CALL *p_clEnqueueReadBuffer)(cl_command_queue command_queue, cl_mem buffer,
                                                  cl_bool blocking_read, size_t offset, size_t size,
                                                  void *ptr, cl_uint num_events_in_wait_list,
                                                  const cl_event *event_wait_list, cl_event *event);
static cl_int(CL_API_CALL *p_clReleaseProgram)(cl_program program);
static cl_int(CL_API_CALL *p_clReleaseKernel)(cl_kernel kernel);
static cl_int(CL_API_CALL *p_clSetKernelArg)(cl_kernel kernel, cl_uint arg_index, size_t arg_size,
                                             const void *arg_value);
static cl_int(CL_API_CALL *p_clGetProgramInfo)(cl_program program, cl_program_info param_name,
                                               size_t param_value_size, void *param_value,
                                               size_t *param_value_size_ret);
static cl_int(CL_API_CALL *p_clGetProgramBuildInfo)(cl_program program, cl_device_id device,
                                                    cl_program_build_info param_name,
                                                    size_t param_value_size, void *param_value,
                                                    size_t *param_value_size_ret);
static cl_int(CL_API_CALL *p_clGetPlatformIDs)(cl_uint num_entries, cl_platform_id *platforms,
                                               cl_uint *num_platforms);
static cl_int(CL_API_CALL *p_clGetDeviceIDs)(cl_platform_id platform, cl_device_type device_type,
                                             cl_uint num_entries, cl_device_id *devices,
                                             cl_uint *num_devices);
static cl_int(CL_API_CALL *p_clEnqueueNDRangeKernel)(
    cl_command_queue command_queue, cl_kernel kernel, cl_uint work_dim,
    const size_t *global_work_offset, const size_t *global_work_size, const size_t *local_work_size,
    cl_uint num_events_in_wait_list, const cl_event *event_wait_list, cl_event *event);
static cl_int(CL_API_CALL *p_clEnqueueFillBuffer)(cl_command_queue command_queue, cl_mem buffer,
                                                  const void *pattern, size_t pattern_size,
                                                  size_t offset, size_t size,
                                                  cl_uint num_events_in_wait_list,
                                                  const cl_event *event_wait_list, cl_event *event);
static cl_kernel(CL_API_CALL *p_clCreateKernel)(cl_program program, const char *kernel_name,
                                                cl_int *errcode_ret);
static cl_context(CL_API_CALL *p_clCreateContext)(
    const cl_context_properties *properties, cl_uint num_devices, const cl_device_id *devices,
    void(CL_CALLBACK *pfn_notify)(const char *errinfo, const void *private_info, size_t cb,
                                  void *user_data),
    void *user_data, cl_int *errcode_ret);
static cl_mem(CL_API_CALL *p_clCreateBuffer)(cl_context context, cl_mem_flags flags, size_t size,
                                             void *host_ptr, cl_int *errcode_ret);
static cl_int(CL_API_CALL *p_clBuildProgram)(
    cl_program program, cl_uint num_devices, const cl_device_id *device_list, const char *options,
    void(CL_CALLBACK *pfn_notify)(cl_program program, void *user_data), void *user_data);
static cl_int(CL_API_CALL *p_clReleaseMemObject)(cl_mem memobj);
static cl_int(CL_API_CALL *p_clReleaseContext)(cl_context context);
static cl_int(CL_API_CALL *p_clReleaseCommandQueue)(cl_command_queue command_queue);
static cl_int(CL_API_CALL *p_clGetPlatformInfo)(cl_platform_id platform,
                                                cl_platform_info param_name,
                                                size_t param_value_size, void *param_value,
                                                size_t *param_value_size_ret);
static cl_program(CL_API_CALL *p_clCreateProgramWithSource)(cl_context context, cl_uint count,
                                                            const char **strings,
                                                            const size_t *lengths,
                                                            cl_int *errcode_ret);
static cl_program(CL_API_CALL *p_clCreateProgramWithBinary)(
    cl_context context, cl_uint num_devices, const cl_device_id *device_list, const size_t *lengths,
    const unsigned char **binaries, cl_int *binary_status, cl_int *errcode_ret);
static CL_API_PREFIX__VERSION_1_2_DEPRECATED
cl_command_queue(CL_API_CALL *p_clCreateCommandQueue)(cl_context context, cl_device_id device,
                                                      cl_command_queue_properties properties,
                                                      cl_int *errcode_ret);
static CLBlastStatusCode (*p_CLBlastSgemm)(const CLBlastLayout, const CLBlastTranspose,
                                           const CLBlastTranspose, const size_t, const size_t,
                                           const size_t, const float, const cl_mem, const size_t,
                                           const size_t, const cl_mem, const size_t, const size_t,
                                           const float, cl_mem, const size_t, const size_t,
                                           cl_command_queue *, cl_event *);
static CLBlastStatusCode (*p_CLBlastOverrideParameters)(const cl_device_id, const char *,
                                                        const CLBlastPrecision, const size_t,
                                                        const char **, const size_t *);

#define RESOLVE(lib, name)                                                                         \
    do {                                                                                           \
        *(void **)&p_##name = dlsym(lib, #name);                                                   \
        if (!p_##name) {                                                                           \
            snprintf(g_err, sizeof g_err, "%s lacks %s", #lib, #name);                             \
            ok = 0;                                                                                \
        }                                                                                          \
    } while (0)

static void load(void)
{
    int ok = 1;
    g_cl = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!g_cl) {
        snprintf(g_err, sizeof g_err, "no OpenCL ICD loader (libOpenCL.so.1): %s", dlerror());
        return;
    }
    RESOLVE(g_cl, clGetDeviceInfo);
    RESOLVE(g_cl, clFinish);
    RESOLVE(g_cl, clEnqueueWriteBuffer);
    RESOLVE(g_cl, clEnqueueReadBuffer);
    RESOLVE(g_cl, clReleaseProgram);
    RESOLVE(g_cl, clReleaseKernel);
    RESOLVE(g_cl, clSetKernelArg);
    RESOLVE(g_cl, clGetProgramInfo);
    RESOLVE(g_cl, clGetProgramBuildInfo);
    RESOLVE(g_cl, clGetPlatformIDs);
    RESOLVE(g_cl, clGetDeviceIDs);
    RESOLVE(g_cl, clEnqueueNDRangeKernel);
    RESOLVE(g_cl, clEnqueueFillBuffer);
    RESOLVE(g_cl, clCreateKernel);
    RESOLVE(g_cl, clCreateContext);
    RESOLVE(g_cl, clCreateBuffer);
    RESOLVE(g_cl, clBuildProgram);
    RESOLVE(g_cl, clReleaseMemObject);
    RESOLVE(g_cl, clReleaseContext);
    RESOLVE(g_cl, clReleaseCommandQueue);
    RESOLVE(g_cl, clGetPlatformInfo);
    RESOLVE(g_cl, clCreateProgramWithSource);
    RESOLVE(g_cl, clCreateProgramWithBinary);
    RESOLVE(g_cl, clCreateCommandQueue);
    g_blast = dlopen("libclblast.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!g_blast) {
        snprintf(g_err, sizeof g_err, "no CLBlast (libclblast.so.1): %s", dlerror());
        ok = 0;
    } else {
        RESOLVE(g_blast, CLBlastSgemm);
        RESOLVE(g_blast, CLBlastOverrideParameters);
    }
    if (!ok) {
        /* All or nothing: a half-resolved table would fail in the middle of a model. */
        p_clGetDeviceInfo = NULL;
        p_clFinish = NULL;
        p_clEnqueueWriteBuffer = NULL;
        p_clEnqueueReadBuffer = NULL;
        p_clReleaseProgram = NULL;
        p_clReleaseKernel = NULL;
        p_clSetKernelArg = NULL;
        p_clGetProgramInfo = NULL;
        p_clGetProgramBuildInfo = NULL;
        p_clGetPlatformIDs = NULL;
        p_clGetDeviceIDs = NULL;
        p_clEnqueueNDRangeKernel = NULL;
        p_clEnqueueFillBuffer = NULL;
        p_clCreateKernel = NULL;
        p_clCreateContext = NULL;
        p_clCreateBuffer = NULL;
        p_clBuildProgram = NULL;
        p_clReleaseMemObject = NULL;
        p_clReleaseContext = NULL;
        p_clReleaseCommandQueue = NULL;
        p_clGetPlatformInfo = NULL;
        p_clCreateProgramWithSource = NULL;
        p_clCreateProgramWithBinary = NULL;
        p_clCreateCommandQueue = NULL;
        p_CLBlastSgemm = NULL;
        p_CLBlastOverrideParameters = NULL;
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

int cl_load_probe_gpu(char *note, size_t cap)
{
    if (note && cap) note[0] = 0;
    int fd[2];
    if (pipe(fd) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        /* The child maps the driver, looks, reports and leaves: the parent never maps it. */
        close(fd[0]);
        struct {
            int idx;
            char why[200];
        } m = {-1, ""};
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
    struct {
        int idx;
        char why[200];
    } m = {-1, ""};
    ssize_t r;
    do
        r = read(fd[0], &m, sizeof m);
    while (r < 0 && errno == EINTR);
    close(fd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (r != (ssize_t)sizeof m) return -1;
    m.why[sizeof m.why - 1] = 0;
    if (note && cap) snprintf(note, cap, "%s", m.why);
    return m.idx;
}

CL_API_ENTRY cl_int CL_API_CALL clGetDeviceInfo(cl_device_id device, cl_device_info param_name,
                                                size_t param_value_size, void *param_value,
                                                size_t *param_value_size_ret)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clGetDeviceInfo(device, param_name, param_value_size, param_value,
                             param_value_size_ret);
}

CL_API_ENTRY cl_int CL_API_CALL clFinish(cl_command_queue command_queue)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clFinish(command_queue);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueWriteBuffer(cl_command_queue command_queue, cl_mem buffer,
                                                     cl_bool blocking_write, size_t offset,
                                                     size_t size, const void *ptr,
                                                     cl_uint num_events_in_wait_list,
                                                     const cl_event *event_wait_list,
                                                     cl_event *event)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clEnqueueWriteBuffer(command_queue, buffer, blocking_write, offset, size, ptr,
                                  num_events_in_wait_list, event_wait_list, event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueReadBuffer(cl_command_queue command_queue, cl_mem buffer,
                                                    cl_bool blocking_read, size_t offset,
                                                    size_t size, void *ptr,
                                                    cl_uint num_events_in_wait_list,
                                                    const cl_event *event_wait_list,
                                                    cl_event *event)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clEnqueueReadBuffer(command_queue, buffer, blocking_read, offset, size, ptr,
                                 num_events_in_wait_list, event_wait_list, event);
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseProgram(cl_program program)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clReleaseProgram(program);
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseKernel(cl_kernel kernel)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clReleaseKernel(kernel);
}

CL_API_ENTRY cl_int CL_API_CALL clSetKernelArg(cl_kernel kernel, cl_uint arg_index, size_t arg_size,
                                               const void *arg_value)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clSetKernelArg(kernel, arg_index, arg_size, arg_value);
}

CL_API_ENTRY cl_int CL_API_CALL clGetProgramInfo(cl_program program, cl_program_info param_name,
                                                 size_t param_value_size, void *param_value,
                                                 size_t *param_value_size_ret)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clGetProgramInfo(program, param_name, param_value_size, param_value,
                              param_value_size_ret);
}

CL_API_ENTRY cl_int CL_API_CALL clGetProgramBuildInfo(cl_program program, cl_device_id device,
                                                      cl_program_build_info param_name,
                                                      size_t param_value_size, void *param_value,
                                                      size_t *param_value_size_ret)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clGetProgramBuildInfo(program, device, param_name, param_value_size, param_value,
                                   param_value_size_ret);
}

CL_API_ENTRY cl_int CL_API_CALL clGetPlatformIDs(cl_uint num_entries, cl_platform_id *platforms,
                                                 cl_uint *num_platforms)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clGetPlatformIDs(num_entries, platforms, num_platforms);
}

CL_API_ENTRY cl_int CL_API_CALL clGetDeviceIDs(cl_platform_id platform, cl_device_type device_type,
                                               cl_uint num_entries, cl_device_id *devices,
                                               cl_uint *num_devices)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clGetDeviceIDs(platform, device_type, num_entries, devices, num_devices);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueNDRangeKernel(
    cl_command_queue command_queue, cl_kernel kernel, cl_uint work_dim,
    const size_t *global_work_offset, const size_t *global_work_size, const size_t *local_work_size,
    cl_uint num_events_in_wait_list, const cl_event *event_wait_list, cl_event *event)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clEnqueueNDRangeKernel(command_queue, kernel, work_dim, global_work_offset,
                                    global_work_size, local_work_size, num_events_in_wait_list,
                                    event_wait_list, event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueFillBuffer(cl_command_queue command_queue, cl_mem buffer,
                                                    const void *pattern, size_t pattern_size,
                                                    size_t offset, size_t size,
                                                    cl_uint num_events_in_wait_list,
                                                    const cl_event *event_wait_list,
                                                    cl_event *event)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clEnqueueFillBuffer(command_queue, buffer, pattern, pattern_size, offset, size,
                                 num_events_in_wait_list, event_wait_list, event);
}

CL_API_ENTRY cl_kernel CL_API_CALL clCreateKernel(cl_program program, const char *kernel_name,
                                                  cl_int *errcode_ret)
{
    if (cl_load(NULL, 0) != 0) return not_found(errcode_ret);
    return p_clCreateKernel(program, kernel_name, errcode_ret);
}

CL_API_ENTRY cl_context CL_API_CALL clCreateContext(
    const cl_context_properties *properties, cl_uint num_devices, const cl_device_id *devices,
    void(CL_CALLBACK *pfn_notify)(const char *errinfo, const void *private_info, size_t cb,
                                  void *user_data),
    void *user_data, cl_int *errcode_ret)
{
    if (cl_load(NULL, 0) != 0) return not_found(errcode_ret);
    return p_clCreateContext(properties, num_devices, devices, pfn_notify, user_data, errcode_ret);
}

CL_API_ENTRY cl_mem CL_API_CALL clCreateBuffer(cl_context context, cl_mem_flags flags, size_t size,
                                               void *host_ptr, cl_int *errcode_ret)
{
    if (cl_load(NULL, 0) != 0) return not_found(errcode_ret);
    return p_clCreateBuffer(context, flags, size, host_ptr, errcode_ret);
}

CL_API_ENTRY cl_int CL_API_CALL clBuildProgram(
    cl_program program, cl_uint num_devices, const cl_device_id *device_list, const char *options,
    void(CL_CALLBACK *pfn_notify)(cl_program program, void *user_data), void *user_data)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clBuildProgram(program, num_devices, device_list, options, pfn_notify, user_data);
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseMemObject(cl_mem memobj)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clReleaseMemObject(memobj);
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseContext(cl_context context)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clReleaseContext(context);
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseCommandQueue(cl_command_queue command_queue)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clReleaseCommandQueue(command_queue);
}

CL_API_ENTRY cl_int CL_API_CALL clGetPlatformInfo(cl_platform_id platform,
                                                  cl_platform_info param_name,
                                                  size_t param_value_size, void *param_value,
                                                  size_t *param_value_size_ret)
{
    if (cl_load(NULL, 0) != 0) return NOT_FOUND;
    return p_clGetPlatformInfo(platform, param_name, param_value_size, param_value,
                               param_value_size_ret);
}

CL_API_ENTRY cl_program CL_API_CALL clCreateProgramWithSource(cl_context context, cl_uint count,
                                                              const char **strings,
                                                              const size_t *lengths,
                                                              cl_int *errcode_ret)
{
    if (cl_load(NULL, 0) != 0) return not_found(errcode_ret);
    return p_clCreateProgramWithSource(context, count, strings, lengths, errcode_ret);
}

CL_API_ENTRY cl_program CL_API_CALL clCreateProgramWithBinary(
    cl_context context, cl_uint num_devices, const cl_device_id *device_list, const size_t *lengths,
    const unsigned char **binaries, cl_int *binary_status, cl_int *errcode_ret)
{
    if (cl_load(NULL, 0) != 0) return not_found(errcode_ret);
    return p_clCreateProgramWithBinary(context, num_devices, device_list, lengths, binaries,
                                       binary_status, errcode_ret);
}

CL_API_ENTRY CL_API_PREFIX__VERSION_1_2_DEPRECATED cl_command_queue CL_API_CALL
clCreateCommandQueue(cl_context context, cl_device_id device,
                     cl_command_queue_properties properties, cl_int *errcode_ret)
{
    if (cl_load(NULL, 0) != 0) return not_found(errcode_ret);
    return p_clCreateCommandQueue(context, device, properties, errcode_ret);
}

CLBlastStatusCode PUBLIC_API
CLBlastSgemm(const CLBlastLayout layout, const CLBlastTranspose a_transpose,
             const CLBlastTranspose b_transpose, const size_t m, const size_t n, const size_t k,
             const float alpha, const cl_mem a_buffer, const size_t a_offset, const size_t a_ld,
             const cl_mem b_buffer, const size_t b_offset, const size_t b_ld, const float beta,
             cl_mem c_buffer, const size_t c_offset, const size_t c_ld, cl_command_queue *queue,
             cl_event *event)
{
    if (cl_load(NULL, 0) != 0) return CLBlastOpenCLCompilerNotAvailable;
    return p_CLBlastSgemm(layout, a_transpose, b_transpose, m, n, k, alpha, a_buffer, a_offset,
                          a_ld, b_buffer, b_offset, b_ld, beta, c_buffer, c_offset, c_ld, queue,
                          event);
}

CLBlastStatusCode PUBLIC_API CLBlastOverrideParameters(
    const cl_device_id device, const char *kernel_name, const CLBlastPrecision precision,
    const size_t num_parameters, const char **parameters_names, const size_t *parameters_values)
{
    if (cl_load(NULL, 0) != 0) return CLBlastOpenCLCompilerNotAvailable;
    return p_CLBlastOverrideParameters(device, kernel_name, precision, num_parameters,
                                       parameters_names, parameters_values);
}
