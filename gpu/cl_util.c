/* gpu/cl_util: OpenCL status names, device enumeration, cached program builds, write hook. */
#include "gpu/cl_util.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <clblast_c.h>

struct status_name {
    int code;
    const char *name;
};

static const struct status_name cl_names[] = {
    {0, "CL_SUCCESS"},
    {-1, "CL_DEVICE_NOT_FOUND"},
    {-2, "CL_DEVICE_NOT_AVAILABLE"},
    {-3, "CL_COMPILER_NOT_AVAILABLE"},
    {-4, "CL_MEM_OBJECT_ALLOCATION_FAILURE"},
    {-5, "CL_OUT_OF_RESOURCES"},
    {-6, "CL_OUT_OF_HOST_MEMORY"},
    {-7, "CL_PROFILING_INFO_NOT_AVAILABLE"},
    {-8, "CL_MEM_COPY_OVERLAP"},
    {-9, "CL_IMAGE_FORMAT_MISMATCH"},
    {-10, "CL_IMAGE_FORMAT_NOT_SUPPORTED"},
    {-11, "CL_BUILD_PROGRAM_FAILURE"},
    {-12, "CL_MAP_FAILURE"},
    {-13, "CL_MISALIGNED_SUB_BUFFER_OFFSET"},
    {-14, "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST"},
    {-15, "CL_COMPILE_PROGRAM_FAILURE"},
    {-16, "CL_LINKER_NOT_AVAILABLE"},
    {-17, "CL_LINK_PROGRAM_FAILURE"},
    {-18, "CL_DEVICE_PARTITION_FAILED"},
    {-19, "CL_KERNEL_ARG_INFO_NOT_AVAILABLE"},
    {-30, "CL_INVALID_VALUE"},
    {-31, "CL_INVALID_DEVICE_TYPE"},
    {-32, "CL_INVALID_PLATFORM"},
    {-33, "CL_INVALID_DEVICE"},
    {-34, "CL_INVALID_CONTEXT"},
    {-35, "CL_INVALID_QUEUE_PROPERTIES"},
    {-36, "CL_INVALID_COMMAND_QUEUE"},
    {-37, "CL_INVALID_HOST_PTR"},
    {-38, "CL_INVALID_MEM_OBJECT"},
    {-39, "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR"},
    {-40, "CL_INVALID_IMAGE_SIZE"},
    {-41, "CL_INVALID_SAMPLER"},
    {-42, "CL_INVALID_BINARY"},
    {-43, "CL_INVALID_BUILD_OPTIONS"},
    {-44, "CL_INVALID_PROGRAM"},
    {-45, "CL_INVALID_PROGRAM_EXECUTABLE"},
    {-46, "CL_INVALID_KERNEL_NAME"},
    {-47, "CL_INVALID_KERNEL_DEFINITION"},
    {-48, "CL_INVALID_KERNEL"},
    {-49, "CL_INVALID_ARG_INDEX"},
    {-50, "CL_INVALID_ARG_VALUE"},
    {-51, "CL_INVALID_ARG_SIZE"},
    {-52, "CL_INVALID_KERNEL_ARGS"},
    {-53, "CL_INVALID_WORK_DIMENSION"},
    {-54, "CL_INVALID_WORK_GROUP_SIZE"},
    {-55, "CL_INVALID_WORK_ITEM_SIZE"},
    {-56, "CL_INVALID_GLOBAL_OFFSET"},
    {-57, "CL_INVALID_EVENT_WAIT_LIST"},
    {-58, "CL_INVALID_EVENT"},
    {-59, "CL_INVALID_OPERATION"},
    {-60, "CL_INVALID_GL_OBJECT"},
    {-61, "CL_INVALID_BUFFER_SIZE"},
    {-62, "CL_INVALID_MIP_LEVEL"},
    {-63, "CL_INVALID_GLOBAL_WORK_SIZE"},
    {-64, "CL_INVALID_PROPERTY"},
    {-65, "CL_INVALID_IMAGE_DESCRIPTOR"},
    {-66, "CL_INVALID_COMPILER_OPTIONS"},
    {-67, "CL_INVALID_LINKER_OPTIONS"},
    {-68, "CL_INVALID_DEVICE_PARTITION_COUNT"},
    {-69, "CL_INVALID_PIPE_SIZE"},
    {-70, "CL_INVALID_DEVICE_QUEUE"},
    {-71, "CL_INVALID_SPEC_ID"},
    {-72, "CL_MAX_SIZE_RESTRICTION_EXCEEDED"},
    {-1000, "CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR"},
    {-1001, "CL_PLATFORM_NOT_FOUND_KHR"},
};

static const struct status_name blast_names[] = {
    {CLBlastNotImplemented, "CLBlastNotImplemented"},
    {CLBlastInvalidMatrixA, "CLBlastInvalidMatrixA"},
    {CLBlastInvalidMatrixB, "CLBlastInvalidMatrixB"},
    {CLBlastInvalidMatrixC, "CLBlastInvalidMatrixC"},
    {CLBlastInvalidVectorX, "CLBlastInvalidVectorX"},
    {CLBlastInvalidVectorY, "CLBlastInvalidVectorY"},
    {CLBlastInvalidDimension, "CLBlastInvalidDimension"},
    {CLBlastInvalidLeadDimA, "CLBlastInvalidLeadDimA"},
    {CLBlastInvalidLeadDimB, "CLBlastInvalidLeadDimB"},
    {CLBlastInvalidLeadDimC, "CLBlastInvalidLeadDimC"},
    {CLBlastInvalidIncrementX, "CLBlastInvalidIncrementX"},
    {CLBlastInvalidIncrementY, "CLBlastInvalidIncrementY"},
    {CLBlastInsufficientMemoryA, "CLBlastInsufficientMemoryA"},
    {CLBlastInsufficientMemoryB, "CLBlastInsufficientMemoryB"},
    {CLBlastInsufficientMemoryC, "CLBlastInsufficientMemoryC"},
    {CLBlastInsufficientMemoryX, "CLBlastInsufficientMemoryX"},
    {CLBlastInsufficientMemoryY, "CLBlastInsufficientMemoryY"},
    {CLBlastInsufficientMemoryTemp, "CLBlastInsufficientMemoryTemp"},
    {CLBlastInvalidBatchCount, "CLBlastInvalidBatchCount"},
    {CLBlastInvalidOverrideKernel, "CLBlastInvalidOverrideKernel"},
    {CLBlastMissingOverrideParameter, "CLBlastMissingOverrideParameter"},
    {CLBlastInvalidLocalMemUsage, "CLBlastInvalidLocalMemUsage"},
    {CLBlastNoHalfPrecision, "CLBlastNoHalfPrecision"},
    {CLBlastNoDoublePrecision, "CLBlastNoDoublePrecision"},
    {CLBlastInvalidVectorScalar, "CLBlastInvalidVectorScalar"},
    {CLBlastInsufficientMemoryScalar, "CLBlastInsufficientMemoryScalar"},
    {CLBlastDatabaseError, "CLBlastDatabaseError"},
    {CLBlastUnknownError, "CLBlastUnknownError"},
    {CLBlastUnexpectedError, "CLBlastUnexpectedError"},
};

static const char *lookup(const struct status_name *t, size_t n, int code)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].code == code) return t[i].name;
    return NULL;
}

const char *clu_status_name(cl_int st)
{
    static _Thread_local char buf[48];
    const char *s = lookup(cl_names, sizeof cl_names / sizeof cl_names[0], st);
    if (s) return s;
    snprintf(buf, sizeof buf, "CL_UNKNOWN_ERROR(%d)", (int)st);
    return buf;
}

const char *clu_blast_status_name(int st)
{
    static _Thread_local char buf[48];
    const char *s = lookup(blast_names, sizeof blast_names / sizeof blast_names[0], st);
    if (s) return s;
    /* CLBlast forwards OpenCL statuses unchanged. */
    s = lookup(cl_names, sizeof cl_names / sizeof cl_names[0], st);
    if (s) return s;
    snprintf(buf, sizeof buf, "CLBlastStatus(%d)", st);
    return buf;
}

int clu_is_oom(cl_int st)
{
    return st == CL_MEM_OBJECT_ALLOCATION_FAILURE || st == CL_OUT_OF_RESOURCES ||
           st == CL_OUT_OF_HOST_MEMORY || st == CL_INVALID_BUFFER_SIZE;
}

/* --- devices ---------------------------------------------------------------------- */

static void dev_str(cl_device_id d, cl_device_info what, char *buf, size_t n)
{
    size_t got = 0;
    buf[0] = 0;
    if (clGetDeviceInfo(d, what, n - 1, buf, &got) != CL_SUCCESS) {
        snprintf(buf, n, "?");
        return;
    }
    buf[n - 1] = 0;
}

const char *clu_type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return "GPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    if (t & CL_DEVICE_TYPE_CPU) return "CPU";
    return "other";
}

static void fill_dev(struct clu_dev *e, cl_platform_id p, cl_device_id d)
{
    e->platform = p;
    e->device = d;
    if (clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof e->platform_name - 1, e->platform_name,
                          NULL) != CL_SUCCESS)
        snprintf(e->platform_name, sizeof e->platform_name, "?");
    e->platform_name[sizeof e->platform_name - 1] = 0;
    dev_str(d, CL_DEVICE_NAME, e->name, sizeof e->name);
    dev_str(d, CL_DEVICE_VENDOR, e->vendor, sizeof e->vendor);
    dev_str(d, CL_DEVICE_VERSION, e->version, sizeof e->version);
    dev_str(d, CL_DRIVER_VERSION, e->driver, sizeof e->driver);
    if (clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof e->type, &e->type, NULL) != CL_SUCCESS)
        e->type = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof e->global_mem, &e->global_mem,
                        NULL) != CL_SUCCESS)
        e->global_mem = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof e->max_alloc, &e->max_alloc,
                        NULL) != CL_SUCCESS)
        e->max_alloc = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof e->local_mem, &e->local_mem,
                        NULL) != CL_SUCCESS)
        e->local_mem = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof e->compute_units,
                        &e->compute_units, NULL) != CL_SUCCESS)
        e->compute_units = 0;
    size_t extn = 0;
    e->fp16 = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &extn) == CL_SUCCESS && extn) {
        char *ext = malloc(extn + 1);
        if (ext && clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, extn, ext, NULL) == CL_SUCCESS) {
            ext[extn] = 0;
            e->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
        }
        free(ext);
    }
    cl_bool avail = CL_FALSE, comp = CL_FALSE;
    cl_int sa = clGetDeviceInfo(d, CL_DEVICE_AVAILABLE, sizeof avail, &avail, NULL);
    cl_int sc = clGetDeviceInfo(d, CL_DEVICE_COMPILER_AVAILABLE, sizeof comp, &comp, NULL);
    int major = 0, minor = 0;
    if (sscanf(e->version, "OpenCL %d.%d", &major, &minor) != 2) major = minor = 0;
    e->usable = 0;
    if (sa != CL_SUCCESS || sc != CL_SUCCESS)
        snprintf(e->why, sizeof e->why, "clGetDeviceInfo(%s): %s",
                 sa != CL_SUCCESS ? "CL_DEVICE_AVAILABLE" : "CL_DEVICE_COMPILER_AVAILABLE",
                 clu_status_name(sa != CL_SUCCESS ? sa : sc));
    else if (!avail)
        snprintf(e->why, sizeof e->why, "device not available");
    else if (!comp)
        snprintf(e->why, sizeof e->why, "no OpenCL C compiler");
    else if (major < 1 || (major == 1 && minor < 2))
        snprintf(e->why, sizeof e->why, "OpenCL %d.%d < 1.2", major, minor);
    else if (e->max_alloc < (1u << 20))
        snprintf(e->why, sizeof e->why, "max allocation below 1 MiB");
    else {
        e->usable = 1;
        e->why[0] = 0;
    }
}

int clu_devices(struct clu_dev **out, int *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    cl_uint np = 0;
    cl_int st = clGetPlatformIDs(0, NULL, &np);
    if (st != CL_SUCCESS || np == 0) {
        snprintf(err, errlen,
                 "no OpenCL platform found (clGetPlatformIDs: %s); install an OpenCL driver "
                 "(e.g. pocl-opencl-icd) or check OCL_ICD_VENDORS",
                 st != CL_SUCCESS ? clu_status_name(st) : "0 platforms");
        return -1;
    }
    cl_platform_id *plats = calloc(np, sizeof *plats);
    if (!plats) {
        snprintf(err, errlen, "out of memory listing OpenCL platforms");
        return -1;
    }
    st = clGetPlatformIDs(np, plats, NULL);
    if (st != CL_SUCCESS) {
        free(plats);
        snprintf(err, errlen, "clGetPlatformIDs: %s", clu_status_name(st));
        return -1;
    }
    struct clu_dev *list = NULL;
    int cnt = 0;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || !nd)
            continue;
        cl_device_id *devs = calloc(nd, sizeof *devs);
        struct clu_dev *nl = devs ? realloc(list, (cnt + nd) * sizeof *list) : NULL;
        if (!devs || !nl) {
            free(devs);
            free(list);
            free(plats);
            snprintf(err, errlen, "out of memory listing OpenCL devices");
            return -1;
        }
        list = nl;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL) != CL_SUCCESS) {
            free(devs);
            continue;
        }
        for (cl_uint i = 0; i < nd; i++) {
            memset(&list[cnt], 0, sizeof list[cnt]);
            list[cnt].index = cnt;
            fill_dev(&list[cnt], plats[p], devs[i]);
            cnt++;
        }
        free(devs);
    }
    free(plats);
    *out = list;
    *n = cnt;
    return 0;
}

void clu_devices_free(struct clu_dev *d) { free(d); }

int clu_first_gpu(void)
{
    struct clu_dev *d;
    int n, r = -1;
    char err[256];
    if (clu_devices(&d, &n, err, sizeof err) != 0) return -1;
    for (int i = 0; i < n; i++)
        if (d[i].usable && (d[i].type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR))) {
            r = i;
            break;
        }
    clu_devices_free(d);
    return r;
}

/* --- program cache ---------------------------------------------------------------- */

#define CACHE_MAGIC "CMIFCLB2"

const char *clu_cache_dir(char *buf, size_t n)
{
    const char *x = getenv("XDG_CACHE_HOME");
    if (x && *x == '/')
        snprintf(buf, n, "%s/cmif", x);
    else {
        const char *h = getenv("HOME");
        snprintf(buf, n, "%s/.cache/cmif", h && *h ? h : "/tmp");
    }
    return buf;
}

int clu_mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
    return 0;
}

static void hash_hex(const unsigned char *h, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[h[i] >> 4];
        out[2 * i + 1] = hx[h[i] & 15];
    }
    out[2 * n] = 0;
}

static void cache_path(const struct clu_dev *dev, const char *src, const char *opts, char *path,
                       size_t n)
{
    unsigned char h[16];
    crypto_generichash_state s;
    crypto_generichash_init(&s, NULL, 0, sizeof h);
    const char *parts[] = {dev->platform_name, dev->name, dev->version, dev->driver,
                           opts ? opts : "", src};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        crypto_generichash_update(&s, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    crypto_generichash_final(&s, h, sizeof h);
    char hex[33], dir[4096];
    hash_hex(h, sizeof h, hex);
    snprintf(path, n, "%s/cl-%s.bin", clu_cache_dir(dir, sizeof dir), hex);
}

/* The per-user key the cache entries are authenticated with (cl.key in the cache directory,
 * 32 random bytes, mode 0600, created on first use). A program binary is code the driver runs
 * inside this process, so an entry someone else could write must not be taken: without the
 * key (another user's file, a wider mode, a link) there is no cache and programs are built
 * from source. 0 or -1. */
static int cache_key(unsigned char key[32])
{
    char dir[4096], path[4200];
    if (clu_mkdirs(clu_cache_dir(dir, sizeof dir)) != 0) return -1;
    snprintf(path, sizeof path, "%s/cl.key", dir);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) return -1;
        randombytes_buf(key, 32);
        int ok = write(fd, key, 32) == 32;
        if (close(fd) != 0 || !ok) {
            unlink(path);
            sodium_memzero(key, 32);
            return -1;
        }
        return 0;
    }
    if (fd < 0) return -1;
    struct stat st;
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == getuid() &&
             (st.st_mode & 077) == 0 && read(fd, key, 32) == 32;
    close(fd);
    if (!ok) sodium_memzero(key, 32);
    return ok ? 0 : -1;
}

/* Reads and verifies a cache entry; NULL when absent or corrupt (the caller rebuilds). */
static unsigned char *cache_load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char hdr[8 + 8 + 32];
    unsigned char *bin = NULL;
    if (fread(hdr, 1, sizeof hdr, f) != sizeof hdr || memcmp(hdr, CACHE_MAGIC, 8) != 0)
        goto bad;
    uint64_t n;
    memcpy(&n, hdr + 8, 8);
    if (n == 0 || n > ((uint64_t)1 << 30)) goto bad;
    bin = malloc(n);
    if (!bin || fread(bin, 1, n, f) != n) goto bad;
    if (fgetc(f) != EOF) goto bad;
    unsigned char h[32], key[32];
    if (cache_key(key) != 0) goto bad;
    crypto_generichash(h, sizeof h, bin, n, key, sizeof key);
    sodium_memzero(key, sizeof key);
    if (sodium_memcmp(h, hdr + 16, 32) != 0) goto bad;
    fclose(f);
    *len = n;
    return bin;
bad:
    free(bin);
    fclose(f);
    return NULL;
}

static void cache_store(const char *path, const unsigned char *bin, size_t n)
{
    char dir[4096], tmp[4500];
    unsigned char key[32];
    if (clu_mkdirs(clu_cache_dir(dir, sizeof dir)) != 0 || cache_key(key) != 0) return;
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) return;
    unsigned char hdr[8 + 8 + 32];
    uint64_t n64 = n;
    memcpy(hdr, CACHE_MAGIC, 8);
    memcpy(hdr + 8, &n64, 8);
    crypto_generichash(hdr + 16, 32, bin, n, key, sizeof key);
    sodium_memzero(key, sizeof key);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        return;
    }
    int ok = fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr && fwrite(bin, 1, n, f) == n;
    if (fclose(f) != 0) ok = 0;
    /* Rename is atomic: a concurrent reader sees the old entry or the new one, never half. */
    if (!ok || rename(tmp, path) != 0) unlink(tmp);
}

static void build_log(cl_program p, cl_device_id d, char *err, size_t errlen, const char *what,
                      cl_int st)
{
    size_t n = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(p, d, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS && n) {
        log = malloc(n + 1);
        if (log && clGetProgramBuildInfo(p, d, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS)
            log[n] = 0;
        else if (log)
            log[0] = 0;
    }
    snprintf(err, errlen, "%s: %s%s%.600s", what, clu_status_name(st), log && *log ? ": " : "",
             log ? log : "");
    free(log);
}

int clu_build(cl_context ctx, const struct clu_dev *dev, const char *src, const char *opts,
              cl_program *out, int *cached, char *err, size_t errlen)
{
    char path[4400];
    cl_int st;
    *out = NULL;
    *cached = 0;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    cache_path(dev, src, opts, path, sizeof path);
    size_t blen = 0;
    unsigned char *bin = cache_load(path, &blen);
    if (bin) {
        const unsigned char *bp = bin;
        cl_int bst = CL_SUCCESS;
        cl_program p = clCreateProgramWithBinary(ctx, 1, &dev->device, &blen, &bp, &bst, &st);
        free(bin);
        if (p && st == CL_SUCCESS && bst == CL_SUCCESS &&
            clBuildProgram(p, 1, &dev->device, opts, NULL, NULL) == CL_SUCCESS) {
            *out = p;
            *cached = 1;
            return 0;
        }
        if (p) clReleaseProgram(p);
        /* Unusable entry (driver changed its mind): rebuild from source below. */
    }
    size_t slen = strlen(src);
    cl_program p = clCreateProgramWithSource(ctx, 1, &src, &slen, &st);
    if (!p || st != CL_SUCCESS) {
        snprintf(err, errlen, "clCreateProgramWithSource: %s", clu_status_name(st));
        return -1;
    }
    st = clBuildProgram(p, 1, &dev->device, opts, NULL, NULL);
    if (st != CL_SUCCESS) {
        build_log(p, dev->device, err, errlen, "clBuildProgram", st);
        clReleaseProgram(p);
        return -1;
    }
    size_t sz = 0;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof sz, &sz, NULL) == CL_SUCCESS && sz) {
        unsigned char *b = malloc(sz);
        if (b && clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof b, &b, NULL) == CL_SUCCESS)
            cache_store(path, b, sz);
        free(b);
    }
    *out = p;
    return 0;
}

/* --- kernel layout override (tests) ------------------------------------------------ */

static int g_layout = -1;

void clu_force_layout(int layout) { g_layout = layout < 0 ? -1 : layout ? 1 : 0; }

int clu_forced_layout(void) { return g_layout; }

/* --- writes ----------------------------------------------------------------------- */

static clu_write_hook g_hook;
static void *g_hook_ctx;

void clu_set_write_hook(clu_write_hook fn, void *ctx)
{
    g_hook = fn;
    g_hook_ctx = ctx;
}

cl_int clu_write(cl_command_queue q, cl_mem buf, size_t off, size_t bytes, const void *src,
                 int kind, int blocking)
{
    if (g_hook) g_hook(g_hook_ctx, kind, src, bytes);
    return clEnqueueWriteBuffer(q, buf, blocking ? CL_TRUE : CL_FALSE, off, bytes, src, 0, NULL,
                                NULL);
}

/* --- sanitizer builds -------------------------------------------------------------- */

/* LeakSanitizer reads this hook (weak in its runtime) for default suppressions. The OpenCL
 * ICD loader and PoCL keep a few process-lifetime allocations they never free; those are
 * not ours. Every program that can open an OpenCL device links this file. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libpocl.so\nleak:libOpenCL.so\nleak:libclblast.so\n";
}
