/* core/gguf: a GGUF v2/v3 reader over mmap.
 *
 * Every count, length, offset, dimension and type read from the file is checked against
 * the file size and for integer overflow before it is used; no allocation is sized by an
 * unchecked file value. Errors name the offending field. Strings point into the mapping
 * and are not NUL-terminated (use len). */
#ifndef CMIF_CORE_GGUF_H
#define CMIF_CORE_GGUF_H

#include <stddef.h>
#include <stdint.h>

enum gguf_vtype {
    GGUF_VT_UINT8 = 0, GGUF_VT_INT8 = 1, GGUF_VT_UINT16 = 2, GGUF_VT_INT16 = 3,
    GGUF_VT_UINT32 = 4, GGUF_VT_INT32 = 5, GGUF_VT_FLOAT32 = 6, GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8, GGUF_VT_ARRAY = 9, GGUF_VT_UINT64 = 10, GGUF_VT_INT64 = 11,
    GGUF_VT_FLOAT64 = 12,
};

/* Tensor types use ggml's numbering. */
/* Values of tokenizer.ggml.token_type (the GGUF format's numbering). */
enum gguf_token_type {
    GGUF_TOKEN_UNDEFINED = 0, GGUF_TOKEN_NORMAL = 1, GGUF_TOKEN_UNKNOWN = 2,
    GGUF_TOKEN_CONTROL = 3, GGUF_TOKEN_USER_DEFINED = 4, GGUF_TOKEN_UNUSED = 5,
    GGUF_TOKEN_BYTE = 6,
};

enum gguf_ttype {
    GGUF_T_F32 = 0, GGUF_T_F16 = 1, GGUF_T_Q4_0 = 2, GGUF_T_Q4_1 = 3, GGUF_T_Q5_0 = 6,
    GGUF_T_Q5_1 = 7, GGUF_T_Q8_0 = 8, GGUF_T_Q8_1 = 9, GGUF_T_Q2_K = 10, GGUF_T_Q3_K = 11,
    GGUF_T_Q4_K = 12, GGUF_T_Q5_K = 13, GGUF_T_Q6_K = 14, GGUF_T_Q8_K = 15, GGUF_T_IQ4_NL = 20,
    GGUF_T_IQ4_XS = 23, GGUF_T_BF16 = 30,
    GGUF_T_COUNT = 40,
};

#define GGUF_MAX_DIMS 4

struct gguf_str {
    const char *ptr;
    uint64_t len;
};

struct gguf_kv {
    struct gguf_str key;
    uint32_t type;          /* enum gguf_vtype */
    uint32_t arr_type;      /* element type when type == GGUF_VT_ARRAY */
    uint64_t arr_n;         /* element count when type == GGUF_VT_ARRAY */
    const uint8_t *val;     /* first byte of the value (or of the array's elements) */
    const uint64_t *str_off; /* for arrays of strings: offset of element i from val */
};

struct gguf_tensor {
    struct gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused dims 1 */
    uint32_t type;              /* enum gguf_ttype */
    uint64_t offset;            /* relative to the data section */
    uint64_t nbytes;
    const void *data;           /* into the mapping; validated in bounds */
};

struct gguf {
    const uint8_t *map;
    size_t size;
    int owns_map;               /* 1 when gguf_open mmapped the file */
    uint32_t version;
    uint64_t n_kv, n_tensors;
    struct gguf_kv *kv;
    struct gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset;       /* start of the tensor data section */
    /* The mapped file as fstat saw it when it was opened (all 0 for gguf_open_mem): names
     * the file cheaply, e.g. for a cache key; ctime moves with any write to the file. */
    uint64_t file_dev, file_ino, file_size;
    int64_t file_mtime_ns, file_ctime_ns;
};

/* Open and fully validate a file (mmap, read-only). 0 on success, -1 with err set. */
int gguf_open(struct gguf **out, const char *path, char *err, size_t errlen);
/* Same over a caller-owned buffer that must outlive the handle (tests, fuzzing). */
int gguf_open_mem(struct gguf **out, const void *buf, size_t size, char *err, size_t errlen);
void gguf_close(struct gguf *g);

const struct gguf_kv *gguf_find(const struct gguf *g, const char *key);
const struct gguf_tensor *gguf_tensor(const struct gguf *g, const char *name);

/* Typed getters: 0 found, -1 missing, -2 present with a type that does not convert
 * (integers convert between widths only when the value fits). */
int gguf_get_u32(const struct gguf *g, const char *key, uint32_t *out);
int gguf_get_u64(const struct gguf *g, const char *key, uint64_t *out);
int gguf_get_i32(const struct gguf *g, const char *key, int32_t *out);
int gguf_get_f32(const struct gguf *g, const char *key, float *out);
int gguf_get_bool(const struct gguf *g, const char *key, int *out);
int gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out);
/* Array access: element i of an array of strings / numbers. -1 missing, -2 wrong type or
 * index out of range. String elements are O(1) (offsets are indexed at open). */
int gguf_arr_str(const struct gguf_kv *kv, uint64_t i, struct gguf_str *out);
int gguf_arr_f32(const struct gguf_kv *kv, uint64_t i, float *out);
int gguf_arr_i32(const struct gguf_kv *kv, uint64_t i, int32_t *out);

/* Architecture-prefixed key: gguf_arch_key(g, "embedding_length", buf, n) → "llama.embedding_length". */
const char *gguf_arch_key(const struct gguf *g, const char *suffix, char *buf, size_t n);

/* Block geometry of a tensor type (0 for unknown types). */
const char *gguf_type_name(uint32_t type);
uint64_t gguf_type_block_elems(uint32_t type);
uint64_t gguf_type_block_bytes(uint32_t type);
/* Bytes of a row of n elements; -1 when n is not a multiple of the block or overflows. */
int gguf_row_bytes(uint32_t type, uint64_t n, uint64_t *out);
/* Bytes of one scalar metadata value of type t (0 for strings, arrays and unknown types);
 * the reader checks values with it and the writer (app/train/gguf_out) copies them. */
uint64_t gguf_vtype_size(uint32_t t);

#endif
