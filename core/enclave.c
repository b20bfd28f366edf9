/* core/enclave: guarded regions (see enclave.h for the layout and guarantees).
 *
 * Why not sodium_malloc: it cannot back the data pages with memfd_secret and it ignores
 * the mlock result, and the status report must say what protection is actually in force.
 * The layout follows the same idea (guard pages, canary, end at the guard). */
#include "core/enclave.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sodium.h>

#define CANARY_LEN 16
/* Largest secret region faulted in when it is made (see enclave_alloc). */
#define PREFAULT_MAX ((size_t)256 << 10)

static uint8_t g_canary[CANARY_LEN];
static atomic_int g_canary_ready;
static atomic_size_t g_regions, g_bytes, g_locked, g_secret_regions;
static atomic_int g_secret_ok;       /* -1 unknown/failed, 1 worked */
static enclave_free_hook g_hook;
static void *g_hook_ctx;

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static int init_canary(char *err, size_t errlen)
{
    if (atomic_load(&g_canary_ready)) return 0;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "enclave: libsodium failed to initialise");
        return -1;
    }
    /* Racing initialisers would each write a random canary before any region exists in
     * their thread; the core opens regions from one thread, so a plain flag suffices. */
    randombytes_buf(g_canary, sizeof g_canary);
    atomic_store(&g_canary_ready, 1);
    return 0;
}

/* Map len bytes of memfd_secret at addr (MAP_FIXED over our reservation). */
static int map_secret(uint8_t *addr, size_t len)
{
#ifdef SYS_memfd_secret
    long fd = syscall(SYS_memfd_secret, 0);
    if (fd < 0) return -1;
    if (ftruncate((int)fd, (off_t)len) != 0) {
        close((int)fd);
        return -1;
    }
    void *p = mmap(addr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, (int)fd, 0);
    int saved = errno;
    close((int)fd);                  /* the mapping keeps the memory alive */
    errno = saved;
    if (p == MAP_FAILED) return -1;
    return 0;
#else
    (void)addr; (void)len;
    errno = ENOSYS;
    return -1;
#endif
}

int enclave_alloc(struct enclave **out, size_t size, int flags, char *err, size_t errlen)
{
    *out = NULL;
    if (size == 0 || size > ((size_t)1 << 46)) {
        snprintf(err, errlen, "enclave: bad region size %zu", size);
        return -1;
    }
    if (init_canary(err, errlen) != 0) return -1;
    size_t ps = page_size();
    size_t data_len = (size + CANARY_LEN + ps - 1) / ps * ps;
    size_t total = data_len + 2 * ps;
    struct enclave *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "enclave: out of memory");
        return -1;
    }
    uint8_t *base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                         -1, 0);
    if (base == MAP_FAILED) {
        snprintf(err, errlen, "enclave: cannot reserve %zu bytes: %s", total, strerror(errno));
        free(r);
        return -1;
    }
    uint8_t *data = base + ps;
    int secret = 0;
    if (!(flags & ENCLAVE_NO_SECRETMEM) && atomic_load(&g_secret_ok) >= 0) {
        if (map_secret(data, data_len) == 0) {
            /* Secret pages are allocated on first touch (MAP_POPULATE does not populate
             * them). A small region is faulted in now, so Locked: in smaps equals its size;
             * a large one (the swap's row cache, 8 MiB) page by page as it is first used:
             * each secret page's fault also takes it out of the kernel's direct map (a TLB
             * flush), 2048 of them took ~80 ms at every start, and a start uses few. Nothing
             * is weaker for it: a page holds no secret before its first touch, and once
             * there it is as locked and unmapped from the kernel as any. The memlock limit
             * was already checked by mmap, so the touches cannot fail on it. */
            size_t pre = data_len <= PREFAULT_MAX ? data_len : 0;
            for (size_t o = 0; o < pre; o += ps) data[o] = 0;
            secret = 1;
            atomic_store(&g_secret_ok, 1);
        } else if (errno == ENOSYS) {
            atomic_store(&g_secret_ok, -1);   /* never retry on this kernel */
        }
        /* EPERM/EAGAIN/ENOMEM (limit, disabled by boot option): fall back for this region. */
    }
    if (!secret) {
        void *p = mmap(data, data_len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p == MAP_FAILED) {
            snprintf(err, errlen, "enclave: cannot map %zu bytes: %s", data_len,
                     strerror(errno));
            munmap(base, total);
            free(r);
            return -1;
        }
    }
    r->base = base;
    r->total = total;
    r->data = data;
    r->data_len = data_len;
    r->size = size;
    r->ptr = data + data_len - size;
    r->secretmem = secret;
    if (secret) {
        /* Secret memory is VM_LOCKED|VM_DONTDUMP by construction; keep it out of children. */
        r->locked = 1;
        r->wipeonfork = madvise(data, data_len, MADV_DONTFORK) == 0;
    } else {
        if (madvise(data, data_len, MADV_DONTDUMP) != 0) {
            snprintf(err, errlen, "enclave: MADV_DONTDUMP failed: %s", strerror(errno));
            munmap(base, total);
            free(r);
            return -1;
        }
        r->wipeonfork = madvise(data, data_len, MADV_WIPEONFORK) == 0;
        /* The raw syscall: sanitizer runtimes intercept mlock() and report success
         * without locking anything, and the status must be the truth. */
        r->locked = !(flags & ENCLAVE_NO_LOCK) && syscall(SYS_mlock, data, data_len) == 0;
    }
    memcpy(r->ptr - CANARY_LEN, g_canary, CANARY_LEN);
    if (mprotect(data, data_len, PROT_NONE) != 0) {
        snprintf(err, errlen, "enclave: cannot seal region: %s", strerror(errno));
        sodium_memzero(data, data_len);
        munmap(base, total);
        free(r);
        return -1;
    }
    r->sealed = 1;
    atomic_fetch_add(&g_regions, 1);
    atomic_fetch_add(&g_bytes, data_len);
    if (r->locked) atomic_fetch_add(&g_locked, data_len);
    if (secret) atomic_fetch_add(&g_secret_regions, 1);
    *out = r;
    return 0;
}

static void canary_check(const struct enclave *r)
{
    if (sodium_memcmp(r->ptr - CANARY_LEN, g_canary, CANARY_LEN) != 0) {
        static const char msg[] = "cmif: guarded region canary overwritten (memory corruption"
                                  " next to a secret); aborting\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        abort();
    }
}

int enclave_unseal(struct enclave *r, char *err, size_t errlen)
{
    if (r->unseal_depth++ > 0) return 0;
    if (mprotect(r->data, r->data_len, PROT_READ | PROT_WRITE) != 0) {
        r->unseal_depth--;
        snprintf(err, errlen, "enclave: cannot unseal region: %s", strerror(errno));
        return -1;
    }
    r->sealed = 0;
    canary_check(r);
    return 0;
}

int enclave_seal(struct enclave *r, char *err, size_t errlen)
{
    if (r->unseal_depth <= 0) return 0;
    if (--r->unseal_depth > 0) return 0;
    if (mprotect(r->data, r->data_len, PROT_NONE) != 0) {
        snprintf(err, errlen, "enclave: cannot seal region: %s", strerror(errno));
        return -1;
    }
    r->sealed = 1;
    return 0;
}

static int range_protect(struct enclave *r, size_t off, size_t len, int prot, char *err,
                         size_t errlen)
{
    if (off > r->size || len > r->size - off || len == 0) {
        snprintf(err, errlen, "enclave: range %zu+%zu outside a %zu-byte region", off, len,
                 r->size);
        return -1;
    }
    if (r->unseal_depth > 0) return 0;
    size_t ps = page_size();
    uintptr_t a = (uintptr_t)(r->ptr + off) & ~(uintptr_t)(ps - 1);
    uintptr_t b = ((uintptr_t)(r->ptr + off + len) + ps - 1) & ~(uintptr_t)(ps - 1);
    if (mprotect((void *)a, b - a, prot) != 0) {
        snprintf(err, errlen, "enclave: cannot %s region pages: %s",
                 prot == PROT_NONE ? "seal" : "unseal", strerror(errno));
        return -1;
    }
    return 0;
}

int enclave_unseal_range(struct enclave *r, size_t off, size_t len, char *err, size_t errlen)
{
    return range_protect(r, off, len, PROT_READ | PROT_WRITE, err, errlen);
}

int enclave_seal_range(struct enclave *r, size_t off, size_t len, char *err, size_t errlen)
{
    return range_protect(r, off, len, PROT_NONE, err, errlen);
}

/* Wipes the region's data. A large secret region is faulted page by page as it is used
 * (enclave_alloc), and secret pages are never swapped out or reclaimed, so a page mincore
 * does not report resident was never touched and holds nothing: only the resident ones are
 * wiped (wiping the rest would fault each one in, with its TLB flush, at every exit). */
static void wipe_data(struct enclave *r)
{
    size_t ps = page_size(), np = r->data_len / ps;
    unsigned char *vec = r->secretmem && r->data_len > PREFAULT_MAX ? malloc(np) : NULL;
    if (!vec || mincore(r->data, r->data_len, vec) != 0) {
        sodium_memzero(r->data, r->data_len);
        free(vec);
        return;
    }
    for (size_t i = 0; i < np;) {
        size_t j = i;
        while (j < np && (vec[j] & 1)) j++;
        if (j > i) sodium_memzero(r->data + i * ps, (j - i) * ps);
        i = j + 1;
    }
    free(vec);
}

void enclave_free(struct enclave *r)
{
    if (!r) return;
    if (mprotect(r->data, r->data_len, PROT_READ | PROT_WRITE) == 0) {
        canary_check(r);
        wipe_data(r);
        if (g_hook) g_hook(g_hook_ctx, r->data, r->data_len);
    }
    /* If mprotect failed the pages stay PROT_NONE: munmap still releases them, and
     * secretmem / anonymous pages are zeroed by the kernel before reuse. */
    if (r->locked && !r->secretmem) syscall(SYS_munlock, r->data, r->data_len);
    munmap(r->base, r->total);
    atomic_fetch_sub(&g_regions, 1);
    atomic_fetch_sub(&g_bytes, r->data_len);
    if (r->locked) atomic_fetch_sub(&g_locked, r->data_len);
    if (r->secretmem) atomic_fetch_sub(&g_secret_regions, 1);
    free(r);
}

/* A scratch buffer is preceded, inside its region, by one header slot naming the region. */
#define SCRATCH_HDR 16

static struct enclave *scratch_region(const void *p)
{
    struct enclave *r;
    memcpy(&r, (const uint8_t *)p - SCRATCH_HDR, sizeof r);
    return r;
}

void *enclave_scratch_alloc(size_t size, char *err, size_t errlen)
{
    if (size == 0 || size > ((size_t)1 << 46)) {
        snprintf(err, errlen, "enclave: bad scratch size %zu", size);
        return NULL;
    }
    size_t sz = (size + 15) & ~(size_t)15;     /* keeps the start 16-byte aligned */
    struct enclave *r;
    if (enclave_alloc(&r, SCRATCH_HDR + sz, 0, err, errlen) != 0) return NULL;
    if (enclave_unseal(r, err, errlen) != 0) {
        enclave_free(r);
        return NULL;
    }
    memcpy(r->ptr, &r, sizeof r);
    return r->ptr + SCRATCH_HDR;
}

void enclave_scratch_free(void *p)
{
    if (p) enclave_free(scratch_region(p));
}

void enclave_scratch_where(const void *p, struct enclave_where *w)
{
    if (!p) return;
    const struct enclave *r = scratch_region(p);
    w->regions++;
    w->bytes += r->data_len;
    w->secretmem_regions += r->secretmem != 0;
    w->locked_regions += r->locked != 0;
}

int enclave_harden(char *err, size_t errlen)
{
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        snprintf(err, errlen, "enclave: PR_SET_DUMPABLE failed: %s", strerror(errno));
        return -1;
    }
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_CORE, &rl) != 0) {
        snprintf(err, errlen, "enclave: cannot set RLIMIT_CORE to 0: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void enclave_stats(struct enclave_stats *st)
{
    memset(st, 0, sizeof *st);
    st->regions = atomic_load(&g_regions);
    st->bytes = atomic_load(&g_bytes);
    st->bytes_locked = atomic_load(&g_locked);
    st->secretmem_regions = atomic_load(&g_secret_regions);
    st->secretmem_available = atomic_load(&g_secret_ok) > 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0)
        st->memlock_limit = rl.rlim_cur == RLIM_INFINITY ? SIZE_MAX : (size_t)rl.rlim_cur;
    st->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    if (getrlimit(RLIMIT_CORE, &rl) == 0) st->core_limit_zero = rl.rlim_cur == 0;
}

void enclave_set_free_hook(enclave_free_hook fn, void *ctx)
{
    g_hook = fn;
    g_hook_ctx = ctx;
}
