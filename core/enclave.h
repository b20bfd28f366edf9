/* core/enclave: guarded memory regions for the confidential core.
 *
 * A region is a run of data pages between two PROT_NONE guard pages. The data pages
 * come from memfd_secret(2) when the kernel has it (removed from the kernel's direct map,
 * never swapped, never dumped, not inherited by fork), else from an anonymous mapping
 * with MADV_DONTDUMP, MADV_WIPEONFORK and mlock (the mlock result is recorded, never
 * assumed). The caller's bytes end exactly at the trailing guard page, so a write one byte
 * past the end faults; a 16-byte random canary sits just before the start and is checked
 * on unseal and free (a write before the start aborts the process, as libsodium's
 * sodium_free does). Regions are sealed (PROT_NONE) except between enclave_unseal and
 * enclave_seal, and every free wipes the pages before unmapping them. */
#ifndef CMIF_CORE_ENCLAVE_H
#define CMIF_CORE_ENCLAVE_H

#include <stddef.h>
#include <stdint.h>

enum {
    ENCLAVE_NO_SECRETMEM = 1,   /* use the anonymous-mapping path even if memfd_secret works */
    ENCLAVE_NO_LOCK = 2,        /* do not mlock (tests of the "not locked" report) */
};

struct enclave {
    uint8_t *base;          /* whole reservation, guard pages included */
    size_t total;
    uint8_t *data;          /* first data page */
    size_t data_len;        /* data pages (a page multiple) */
    uint8_t *ptr;           /* caller's bytes: ptr[0 .. size-1] end at the trailing guard */
    size_t size;
    int secretmem;          /* data pages are memfd_secret */
    int locked;             /* mlock succeeded, or secretmem (always locked) */
    int wipeonfork;         /* MADV_WIPEONFORK (anon) or MADV_DONTFORK (secretmem) took */
    int sealed;
    int unseal_depth;       /* nested unseal calls; sealed again when it drops to 0 */
};

/* Allocate a sealed region of size bytes (> 0), zero-filled. flags: ENCLAVE_*. */
int enclave_alloc(struct enclave **out, size_t size, int flags, char *err, size_t errlen);
/* Wipe (sodium_memzero), check the canary, unmap. NULL is a no-op. A corrupted canary
 * aborts the process: memory next to a secret was overwritten. */
void enclave_free(struct enclave *r);

/* mprotect RW / PROT_NONE. Unseal nests (depth counted). 0, or -1 with err set. */
int enclave_unseal(struct enclave *r, char *err, size_t errlen);
int enclave_seal(struct enclave *r, char *err, size_t errlen);

/* Open / close only the pages spanning [off, off+len) of the caller's bytes (cheaper than
 * the whole region: mprotect cost grows with the span). No-ops while the whole region is
 * unsealed. Ranges sharing a page must not be open at the same time. */
int enclave_unseal_range(struct enclave *r, size_t off, size_t len, char *err, size_t errlen);
int enclave_seal_range(struct enclave *r, size_t off, size_t len, char *err, size_t errlen);

/* Long-lived scratch: a region of its own, left read-write for its whole life, for state
 * the core touches on every draw or word (the noise state, the mechanism's scratch) where
 * an mprotect per use would cost more than the work. The pages are the same kind as any
 * region's (memfd_secret where the kernel has it: unreadable through /proc/PID/mem, even by
 * root). Zero-filled and 16-byte aligned; the bytes end less than 16 bytes before the
 * trailing guard page. NULL with err set on failure. */
void *enclave_scratch_alloc(size_t size, char *err, size_t errlen);
/* Wipes and unmaps (enclave_free); NULL is a no-op. */
void enclave_scratch_free(void *p);

/* What a set of scratch buffers is made of, for the status report: add each buffer with
 * enclave_scratch_where (NULL is skipped). */
struct enclave_where {
    size_t regions, bytes;
    size_t secretmem_regions, locked_regions;
};
void enclave_scratch_where(const void *p, struct enclave_where *w);

/* Process hardening: PR_SET_DUMPABLE 0 and RLIMIT_CORE 0 (soft and hard). */
int enclave_harden(char *err, size_t errlen);

/* Totals over the regions alive in this process. */
struct enclave_stats {
    size_t regions, bytes, bytes_locked;
    size_t secretmem_regions;
    size_t memlock_limit;           /* RLIMIT_MEMLOCK soft limit (SIZE_MAX = unlimited) */
    int secretmem_available;        /* memfd_secret worked at least once */
    int dumpable;                   /* prctl(PR_GET_DUMPABLE) */
    int core_limit_zero;            /* RLIMIT_CORE soft limit is 0 */
};
void enclave_stats(struct enclave_stats *st);

/* Test hook: called by enclave_free after the wipe and before munmap with the data
 * pages, so a test can check that nothing survived. NULL removes it. */
typedef void (*enclave_free_hook)(void *ctx, const uint8_t *data, size_t len);
void enclave_set_free_hook(enclave_free_hook fn, void *ctx);

#endif
