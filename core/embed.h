/* core/embed: the model's token embedding table, held behind the trust boundary.
 *
 * Rows live in swap pages (core/swap: a guarded, mlock'd or memfd_secret cache, with the
 * rest sealed in the encrypted swap file), kept in their native (possibly quantized)
 * format, a whole number of rows per page, and dequantized (core/qrow) only into caller
 * buffers. Lookups are serialized by a mutex, so several threads may call them.
 *
 * Two kinds of lookup, because what matters is who can see which rows are read:
 *   embed_rows         ids that follow the user's secret words (the pieces of a word
 *                      outside the lexicon, a cluster's rows in a mechanism that reads
 *                      them). Served from the swap only.
 *   embed_rows_public  ids anyone may learn: the fixed public sets read while clustering,
 *                      and ids whose vectors are sent to the decoder anyway (sanitized or
 *                      public words, template and generated tokens). Until the table is
 *                      sealed, served straight from the model's mapping, never consulting
 *                      the swap's cache (whether a page is cached would tell of earlier
 *                      secret reads); once sealed, through the swap like every lookup
 *                      before (its page-ins are seen by the OS only, as those of the
 *                      secret lookups themselves are).
 * A read from the GGUF mapping is seen by more than the OS: the file is shared, so which
 * of its pages are in the page cache (mincore, preadv2 RWF_NOWAIT, timing) tells any
 * process that can open the file which 4 KiB of the table were touched, and its pages are
 * shared memory (Flush+Reload). A page-in from the swap is seen by the OS only, at 64 KiB:
 * the file is unlinked, private to this non-dumpable process, and holds ciphertext. So a
 * secret id never goes to the mapping. Sealing the whole table (215 MB for Llama 3.2 1B)
 * into the swap is what made every start slow; it is now done once, in page order (a fixed
 * pattern, whatever the words), right before the first secret lookup, straight from the
 * mapping into the swap file (swap_put: no cache slot, no mprotect per page). A start
 * whose words need no secret lookup (every word in the lexicon: the word sanitizer takes
 * similarities and centroids from the cluster cache) seals nothing. A table under
 * EMBED_LAZY_MIN is sealed at open, as always: that costs about a millisecond per MB.
 *
 * When the model ties its output projection to token_embd the decoder keeps that matrix
 * mapped. Otherwise the page-aligned interior of token_embd in the read-only mapping is
 * made PROT_NONE once the table is sealed, so nothing looks rows up there afterwards
 * (before, only public lookups do). */
#ifndef CMIF_CORE_EMBED_H
#define CMIF_CORE_EMBED_H

#include <stddef.h>
#include <stdint.h>

struct gguf;
struct swap;
struct embed;

struct embed_options {
    size_t cache_bytes;     /* guarded bytes for resident rows; the rest goes to the swap */
    size_t page_bytes;      /* swap page target; 0 = 64 KiB (smaller when cache_bytes is) */
    const char *swap_dir;   /* NULL: see core/swap */
    int enclave_flags;      /* ENCLAVE_* (tests) */
    int keep_mapping;       /* do not PROT_NONE token_embd in the GGUF mapping (tests) */
    size_t lazy_min_bytes;  /* a table this big or bigger is sealed at the first secret
                               lookup, a smaller one at open; 0 = EMBED_LAZY_MIN */
};

#define EMBED_LAZY_MIN ((size_t)64 << 20)

/* g must outlive the table: until it is sealed, rows are read from g's mapping. */
int embed_open(struct embed **out, const struct gguf *g, const struct embed_options *o,
               char *err, size_t errlen);
void embed_close(struct embed *e);

int embed_dim(const struct embed *e);
int32_t embed_n_vocab(const struct embed *e);

/* Dequantized rows of ids[0..n-1] into out (n x dim floats), for secret ids: from the
 * swap, sealing the table into it first if this is the first such lookup. One unseal for
 * the batch. On any failure (id out of range, swap error) all of out is zeroed and -1
 * returned. */
int embed_rows(struct embed *e, const int32_t *ids, size_t n, float *out, char *err,
               size_t errlen);
int embed_row(struct embed *e, int32_t id, float *out, char *err, size_t errlen);
/* The same rows as stored (embed_type's block format, embed_row_bytes bytes each) into out
 * (n x embed_row_bytes), for a copy of some rows kept in another sealed store. */
int embed_rows_raw(struct embed *e, const int32_t *ids, size_t n, uint8_t *out, char *err,
                   size_t errlen);
uint32_t embed_type(const struct embed *e);      /* GGUF_T_* of token_embd */
size_t embed_row_bytes(const struct embed *e);
/* The same for ids whose lookup may be seen (see above): from the model's mapping until
 * the table is sealed, then from the swap like every lookup. */
int embed_rows_public(struct embed *e, const int32_t *ids, size_t n, float *out, char *err,
                      size_t errlen);
/* Seals the whole table into the swap now (what the first secret lookup does; idle time
 * is a good moment). 0, or -1 with err set. */
int embed_seal(struct embed *e, char *err, size_t errlen);
/* 1 once the whole table is sealed into the swap. */
int embed_sealed(const struct embed *e);

/* BLAKE2b-256 naming the table (e.g. for a cluster cache), without reading it: its type,
 * shape and place in the file, and the file's identity (device, inode, size, mtime and
 * ctime, which moves with any write). A table in a caller's buffer has no file: then the
 * hash is over its bytes. */
const uint8_t *embed_fingerprint(const struct embed *e);
struct swap *embed_swap(const struct embed *e);

#endif
