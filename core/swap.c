/* core/swap: encrypted page store (see swap.h). */
#include "core/util.h"
#include "core/swap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/enclave.h"

#define KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES

struct swap {
    struct enclave *ctl;        /* key[32] then versions[n_pages] (u64) */
    struct enclave *cache;      /* n_slots * stride */
    size_t page_size, n_slots;
    size_t stride;              /* slot spacing: page_size rounded up to 64 (row alignment) */
    uint64_t n_pages;
    char dir[PATH_MAX];
    int fd;
    int64_t *page_slot;         /* slot holding page, or -1 */
    uint8_t *on_disk;           /* the file holds a complete sealed copy of the page */
    int64_t *slot_page;         /* page in slot, or -1 */
    uint64_t *slot_stamp;       /* LRU clock value of the last use */
    uint8_t *slot_dirty;
    uint64_t clock;
    int active;                 /* between swap_begin and swap_end */
    int64_t open_slot;          /* the one unsealed slot, or -1 */
    uint8_t *io;                /* one sealed page: nonce | ciphertext | tag (never plaintext) */
    size_t io_len;
    int failed;
    char fail_msg[200];
    uint64_t pages_out, pages_in, tamper_checks;
    size_t file_bytes;
};

static uint8_t *key_of(struct swap *s) { return s->ctl->ptr; }
static uint64_t *versions_of(struct swap *s) { return (uint64_t *)(void *)(s->ctl->ptr + KEY_BYTES); }

int swap_open(struct swap **out, size_t page_size, uint64_t n_pages, size_t n_slots,
              const char *dir, int enclave_flags, char *err, size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "swap: libsodium failed to initialise");
        return -1;
    }
    if (page_size == 0 || page_size > ((size_t)1 << 30) || n_pages == 0 || n_slots == 0 ||
        n_pages > ((uint64_t)1 << 32)) {
        snprintf(err, errlen, "swap: bad geometry (page %zu bytes, %llu pages, %zu slots)",
                 page_size, (unsigned long long)n_pages, n_slots);
        return -1;
    }
    if (n_slots > n_pages) n_slots = (size_t)n_pages;
    size_t stride = (page_size + 63) & ~(size_t)63;
    if (n_slots > SIZE_MAX / stride) {
        snprintf(err, errlen, "swap: cache size overflows");
        return -1;
    }
    struct swap *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->fd = -1;
    s->open_slot = -1;
    s->page_size = page_size;
    s->stride = stride;
    s->n_pages = n_pages;
    s->n_slots = n_slots;
    util_pick_dir(dir, s->dir, sizeof s->dir);
    s->io_len = SWAP_NONCE_BYTES + page_size + SWAP_TAG_BYTES;
    s->page_slot = malloc(n_pages * sizeof *s->page_slot);
    s->on_disk = calloc(n_pages, 1);
    s->slot_page = malloc(n_slots * sizeof *s->slot_page);
    s->slot_stamp = calloc(n_slots, sizeof *s->slot_stamp);
    s->slot_dirty = calloc(n_slots, 1);
    s->io = malloc(s->io_len);
    if (!s->page_slot || !s->on_disk || !s->slot_page || !s->slot_stamp || !s->slot_dirty ||
        !s->io)
        goto oom;
    for (uint64_t i = 0; i < n_pages; i++) s->page_slot[i] = -1;
    for (size_t i = 0; i < n_slots; i++) s->slot_page[i] = -1;
    if (enclave_alloc(&s->ctl, KEY_BYTES + n_pages * sizeof(uint64_t), enclave_flags, err,
                      errlen) != 0 ||
        enclave_alloc(&s->cache, n_slots * stride, enclave_flags, err, errlen) != 0) {
        swap_close(s);
        return -1;
    }
    if (enclave_unseal(s->ctl, err, errlen) != 0) {
        swap_close(s);
        return -1;
    }
    crypto_aead_xchacha20poly1305_ietf_keygen(key_of(s));   /* versions start at 0 */
    if (enclave_seal(s->ctl, err, errlen) != 0) {
        swap_close(s);
        return -1;
    }
    *out = s;
    return 0;
oom:
    snprintf(err, errlen, "swap: out of memory");
    swap_close(s);
    return -1;
}

void swap_close(struct swap *s)
{
    if (!s) return;
    /* enclave_free wipes the key, the version table and every cached plaintext page. */
    enclave_free(s->cache);
    enclave_free(s->ctl);
    if (s->fd >= 0) {
        /* Drop the ciphertext too (the file is already unlinked; this frees its blocks). */
        if (ftruncate(s->fd, 0) != 0) { /* nothing more to do: close releases it */ }
        close(s->fd);
    }
    UTIL_FREE(s->page_slot, s->on_disk, s->slot_page, s->slot_stamp, s->slot_dirty, s->io, s);
}

static int fail(struct swap *s, char *err, size_t errlen, const char *fmt, unsigned long long page)
{
    s->failed = 1;
    snprintf(s->fail_msg, sizeof s->fail_msg, fmt, page);
    snprintf(err, errlen, "%s", s->fail_msg);
    return -1;
}

static int open_file(struct swap *s, char *err, size_t errlen)
{
    if (s->fd < 0) s->fd = util_tmpfile(s->dir, "swap", err, errlen);
    return s->fd < 0 ? -1 : 0;
}

static void make_ad(uint8_t ad[16], uint64_t page, uint64_t version)
{
    for (int i = 0; i < 8; i++) {
        ad[i] = (uint8_t)(page >> (8 * i));
        ad[8 + i] = (uint8_t)(version >> (8 * i));
    }
}

/* Seal the page in slot and write it. The version is committed only after the whole
 * sealed page reached the file; on any failure the page stays resident and dirty. */
static int page_out(struct swap *s, size_t slot, char *err, size_t errlen)
{
    uint64_t page = (uint64_t)s->slot_page[slot];
    if (open_file(s, err, errlen) != 0) return -1;
    if (enclave_unseal(s->ctl, err, errlen) != 0) return -1;
    uint64_t *ver = versions_of(s);
    uint64_t v = ver[page] + 1;
    uint8_t ad[16];
    make_ad(ad, page, v);
    randombytes_buf(s->io, SWAP_NONCE_BYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(s->io + SWAP_NONCE_BYTES, &clen,
                                               s->cache->ptr + slot * s->stride,
                                               s->page_size, ad, sizeof ad, NULL, s->io,
                                               key_of(s));
    off_t off = (off_t)(page * s->io_len);
    ssize_t w = pwrite(s->fd, s->io, s->io_len, off);
    int saved = errno;
    if (w != (ssize_t)s->io_len) {
        /* The old copy may be half overwritten: it no longer counts as on disk. */
        s->on_disk[page] = 0;
        enclave_seal(s->ctl, err, errlen);
        if (w < 0)
            snprintf(err, errlen, "swap: cannot write page %llu: %s (page kept in memory)",
                     (unsigned long long)page, strerror(saved));
        else
            snprintf(err, errlen,
                     "swap: short write of page %llu (%zd of %zu bytes; disk full?) (page kept"
                     " in memory)", (unsigned long long)page, w, s->io_len);
        return -1;
    }
    ver[page] = v;
    if (enclave_seal(s->ctl, err, errlen) != 0) return -1;
    s->on_disk[page] = 1;
    s->slot_dirty[slot] = 0;
    s->pages_out++;
    if ((size_t)off + s->io_len > s->file_bytes) s->file_bytes = (size_t)off + s->io_len;
    return 0;
}

int swap_put(struct swap *s, uint64_t first, uint64_t n, const void *src, size_t len,
             char *err, size_t errlen)
{
    if (s->failed) {
        snprintf(err, errlen, "%s", s->fail_msg);
        return -1;
    }
    if (s->active || first > s->n_pages || n > s->n_pages - first ||
        len > (size_t)n * s->page_size) {
        snprintf(err, errlen, "swap: bad put of %llu pages at %llu (%zu bytes)",
                 (unsigned long long)n, (unsigned long long)first, len);
        return -1;
    }
    for (uint64_t p = first; p < first + n; p++)
        if (s->page_slot[p] >= 0) {
            snprintf(err, errlen, "swap: put of page %llu, which is resident",
                     (unsigned long long)p);
            return -1;
        }
    if (n == 0) return 0;
    if (open_file(s, err, errlen) != 0) return -1;
    /* Runs of up to 16 sealed pages, written at once (pages are adjacent in the file). */
    enum { RUN = 16 };
    uint8_t *buf = malloc(RUN * s->io_len), *pad = malloc(s->page_size);
    if (!buf || !pad) {
        free(buf);
        free(pad);
        snprintf(err, errlen, "swap: out of memory");
        return -1;
    }
    if (enclave_unseal(s->ctl, err, errlen) != 0) {
        free(buf);
        free(pad);
        return -1;
    }
    uint64_t *ver = versions_of(s);
    const uint8_t *in = src;
    int rc = 0;
    for (uint64_t p0 = first; p0 < first + n && rc == 0; p0 += RUN) {
        uint64_t m = first + n - p0 < RUN ? first + n - p0 : RUN;
        for (uint64_t i = 0; i < m; i++) {
            uint64_t p = p0 + i;
            size_t at = (size_t)(p - first) * s->page_size;
            const uint8_t *pt = in + at;
            if (at + s->page_size > len) {
                /* The short tail (or nothing) of the source, then zeros. */
                size_t have = at < len ? len - at : 0;
                memset(pad, 0, s->page_size);
                if (have) memcpy(pad, in + at, have);
                pt = pad;
            }
            uint8_t *io = buf + i * s->io_len, ad[16];
            make_ad(ad, p, ver[p] + 1);
            randombytes_buf(io, SWAP_NONCE_BYTES);
            unsigned long long clen = 0;
            crypto_aead_xchacha20poly1305_ietf_encrypt(io + SWAP_NONCE_BYTES, &clen, pt,
                                                       s->page_size, ad, sizeof ad, NULL, io,
                                                       key_of(s));
        }
        size_t want = (size_t)m * s->io_len;
        off_t off = (off_t)(p0 * s->io_len);
        ssize_t w = pwrite(s->fd, buf, want, off);
        if (w != (ssize_t)want) {
            /* Old copies may be half overwritten: none of the run counts as on disk. */
            for (uint64_t i = 0; i < m; i++) s->on_disk[p0 + i] = 0;
            snprintf(err, errlen, "swap: cannot write pages %llu..%llu%s",
                     (unsigned long long)p0, (unsigned long long)(p0 + m - 1),
                     w < 0 ? " (write error)" : " (short write; disk full?)");
            rc = -1;
            break;
        }
        for (uint64_t i = 0; i < m; i++) {
            ver[p0 + i]++;
            s->on_disk[p0 + i] = 1;
        }
        s->pages_out += m;
        if ((size_t)off + want > s->file_bytes) s->file_bytes = (size_t)off + want;
    }
    char e2[160];
    if (enclave_seal(s->ctl, rc ? e2 : err, rc ? sizeof e2 : errlen) != 0 && rc == 0) rc = -1;
    sodium_memzero(pad, s->page_size);
    free(buf);
    free(pad);
    return rc;
}

/* Read and open the sealed copy of page into slot. Any failure is fatal and leaves the
 * slot zeroed. */
static int page_in(struct swap *s, uint64_t page, size_t slot, char *err, size_t errlen)
{
    uint8_t *dst = s->cache->ptr + slot * s->stride;
    ssize_t r = pread(s->fd, s->io, s->io_len, (off_t)(page * s->io_len));
    if (r != (ssize_t)s->io_len) {
        sodium_memzero(dst, s->page_size);
        return fail(s, err, errlen,
                    "swap: page %llu is missing from the swap file (truncated or unreadable);"
                    " refusing to continue", (unsigned long long)page);
    }
    if (enclave_unseal(s->ctl, err, errlen) != 0) return -1;
    uint8_t ad[16];
    make_ad(ad, page, versions_of(s)[page]);
    unsigned long long mlen = 0;
    int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(dst, &mlen, NULL,
                                                        s->io + SWAP_NONCE_BYTES,
                                                        s->page_size + SWAP_TAG_BYTES, ad,
                                                        sizeof ad, s->io, key_of(s));
    if (enclave_seal(s->ctl, err, errlen) != 0) rc = -1;
    if (rc != 0 || mlen != s->page_size) {
        sodium_memzero(dst, s->page_size);
        return fail(s, err, errlen,
                    "swap: page %llu failed authentication (swap file tampered with, corrupted"
                    " or from another run); refusing to continue", (unsigned long long)page);
    }
    s->tamper_checks++;
    s->pages_in++;
    return 0;
}

/* Only the slot in use is unsealed: mprotect's cost grows with the span, and one slot
 * (about a swap page) keeps a hot lookup at a few microseconds. Slots may share an OS page
 * at their edges, so at most one is open at a time. */
static int slot_unseal(struct swap *s, size_t slot, char *err, size_t errlen)
{
    return enclave_unseal_range(s->cache, slot * s->stride, s->page_size, err, errlen);
}

static int slot_seal(struct swap *s, size_t slot, char *err, size_t errlen)
{
    return enclave_seal_range(s->cache, slot * s->stride, s->page_size, err, errlen);
}

static int close_open_slot(struct swap *s, char *err, size_t errlen)
{
    if (s->open_slot < 0) return 0;
    size_t slot = (size_t)s->open_slot;
    s->open_slot = -1;
    return slot_seal(s, slot, err, errlen);
}

int swap_begin(struct swap *s, char *err, size_t errlen)
{
    if (s->failed) {
        snprintf(err, errlen, "%s", s->fail_msg);
        return -1;
    }
    s->active = 1;
    return 0;
}

int swap_end(struct swap *s, char *err, size_t errlen)
{
    s->active = 0;
    return close_open_slot(s, err, errlen);
}

int swap_get(struct swap *s, uint64_t page, int for_write, uint8_t **ptr, char *err,
             size_t errlen)
{
    *ptr = NULL;
    if (s->failed) {
        snprintf(err, errlen, "%s", s->fail_msg);
        return -1;
    }
    if (page >= s->n_pages) {
        snprintf(err, errlen, "swap: page %llu out of range (%llu pages)",
                 (unsigned long long)page, (unsigned long long)s->n_pages);
        return -1;
    }
    if (!s->active) {
        snprintf(err, errlen, "swap: swap_get outside swap_begin/swap_end");
        return -1;
    }
    int64_t slot = s->page_slot[page];
    if (slot >= 0 && slot == s->open_slot) goto hit;
    if (close_open_slot(s, err, errlen) != 0) return -1;
    if (slot < 0) {
        if (!for_write && !s->on_disk[page]) {
            snprintf(err, errlen, "swap: page %llu was never written",
                     (unsigned long long)page);
            return -1;
        }
        /* A free slot, else the least recently used one. */
        size_t best = 0;
        uint64_t best_stamp = UINT64_MAX;
        for (size_t i = 0; i < s->n_slots; i++) {
            if (s->slot_page[i] < 0) { best = i; best_stamp = 0; break; }
            if (s->slot_stamp[i] < best_stamp) { best = i; best_stamp = s->slot_stamp[i]; }
        }
        if (slot_unseal(s, best, err, errlen) != 0) return -1;
        if (s->slot_page[best] >= 0) {
            if (s->slot_dirty[best] && page_out(s, best, err, errlen) != 0) {
                char e2[64];
                slot_seal(s, best, e2, sizeof e2);   /* the write error is the one to report */
                return -1;
            }
            s->page_slot[s->slot_page[best]] = -1;
            s->slot_page[best] = -1;
        }
        uint8_t *dst = s->cache->ptr + best * s->stride;
        if (s->on_disk[page]) {
            if (page_in(s, page, best, err, errlen) != 0) {
                char e2[64];
                slot_seal(s, best, e2, sizeof e2);
                return -1;
            }
        } else {
            memset(dst, 0, s->page_size);
        }
        s->slot_page[best] = (int64_t)page;
        s->page_slot[page] = (int64_t)best;
        s->slot_dirty[best] = 0;
        slot = (int64_t)best;
    } else if (slot_unseal(s, (size_t)slot, err, errlen) != 0) {
        return -1;
    }
    s->open_slot = slot;
hit:
    s->slot_stamp[slot] = ++s->clock;
    if (for_write) s->slot_dirty[slot] = 1;
    *ptr = s->cache->ptr + (size_t)slot * s->stride;
    return 0;
}

int swap_read(struct swap *s, uint64_t page, size_t off, void *dst, size_t len, char *err,
              size_t errlen)
{
    if (off > s->page_size || len > s->page_size - off) {
        memset(dst, 0, len);
        snprintf(err, errlen, "swap: read of %zu bytes at %zu outside a %zu-byte page", len,
                 off, s->page_size);
        return -1;
    }
    if (swap_begin(s, err, errlen) != 0) {
        memset(dst, 0, len);
        return -1;
    }
    uint8_t *p;
    int rc = swap_get(s, page, 0, &p, err, errlen);
    if (rc == 0) memcpy(dst, p + off, len);
    else memset(dst, 0, len);
    if (swap_end(s, err, errlen) != 0) rc = -1;
    return rc;
}

int swap_flush(struct swap *s, char *err, size_t errlen)
{
    if (s->failed) {
        snprintf(err, errlen, "%s", s->fail_msg);
        return -1;
    }
    if (close_open_slot(s, err, errlen) != 0) return -1;
    for (size_t i = 0; i < s->n_slots; i++) {
        if (s->slot_page[i] < 0) continue;
        if (slot_unseal(s, i, err, errlen) != 0) return -1;
        int rc = s->slot_dirty[i] ? page_out(s, i, err, errlen) : 0;
        if (rc == 0) {
            sodium_memzero(s->cache->ptr + i * s->stride, s->page_size);
            s->page_slot[s->slot_page[i]] = -1;
            s->slot_page[i] = -1;
        }
        char e2[64];
        if (slot_seal(s, i, rc ? e2 : err, rc ? sizeof e2 : errlen) != 0 && rc == 0) rc = -1;
        if (rc != 0) return -1;
    }
    return 0;
}

void swap_stats(const struct swap *s, struct swap_stats *st)
{
    memset(st, 0, sizeof *st);
    st->pages_out = s->pages_out;
    st->pages_in = s->pages_in;
    st->tamper_checks = s->tamper_checks;
    st->page_size = s->page_size;
    st->n_slots = s->n_slots;
    st->n_pages = s->n_pages;
    for (size_t i = 0; i < s->n_slots; i++) st->resident += s->slot_page[i] >= 0;
    st->file_bytes = s->file_bytes;
    st->failed = s->failed;
}

size_t swap_region_bytes(const struct swap *s)
{
    return s->ctl->data_len + s->cache->data_len;
}

int swap_locked(const struct swap *s)
{
    return s->ctl->locked && s->cache->locked;
}

size_t swap_locked_bytes(const struct swap *s)
{
    return (s->ctl->locked ? s->ctl->data_len : 0) + (s->cache->locked ? s->cache->data_len : 0);
}

int swap_secretmem(const struct swap *s)
{
    return s->ctl->secretmem && s->cache->secretmem;
}

int swap_fd(const struct swap *s)
{
    return s->fd;
}

const uint8_t *swap_test_key(const struct swap *s)
{
    return s->ctl->ptr;
}
