/* Tests of core/gguf: the real stories260K file, a writer round trip, a table of malformed
 * files built byte by byte, typed getters, and truncation/mutation sweeps (run under ASan
 * by `make check-asan`, where every buffer is an exact-size heap block so over-reads trap). */
#include "tests/testutil.h"

#include <math.h>
#include <unistd.h>

#include "core/gguf.h"
#include "app/train/gguf_out.h"
#include "tests/tools/testrng.h"

/* ---- a byte builder for hand-made files ---------------------------------------------- */

struct bb {
    uint8_t *p;
    size_t n, cap;
};

static void bb_put(struct bb *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void u8(struct bb *b, uint8_t v) { bb_put(b, &v, 1); }
static void u32(struct bb *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) u8(b, (uint8_t)(v >> (8 * i)));
}
static void u64(struct bb *b, uint64_t v)
{
    u32(b, (uint32_t)v);
    u32(b, (uint32_t)(v >> 32));
}
static void str(struct bb *b, const char *s)
{
    u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}
static void hdr(struct bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    bb_put(b, "GGUF", 4);
    u32(b, version);
    u64(b, n_tensors);
    u64(b, n_kv);
}
static void kv_u32(struct bb *b, const char *k, uint32_t v)
{
    str(b, k);
    u32(b, GGUF_VT_UINT32);
    u32(b, v);
}
static void kv_str(struct bb *b, const char *k, const char *v)
{
    str(b, k);
    u32(b, GGUF_VT_STRING);
    str(b, v);
}
static void tinfo(struct bb *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                  uint32_t type, uint64_t off)
{
    str(b, name);
    u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) u64(b, ne[i]);
    u32(b, type);
    u64(b, off);
}
static void pad32(struct bb *b)
{
    while (b->n % 32) u8(b, 0);
}
static void zeros(struct bb *b, size_t n)
{
    for (size_t i = 0; i < n; i++) u8(b, 0);
}

/* Opens exactly b's bytes from their own heap block (so ASan sees any over-read). */
static int open_bytes(const uint8_t *p, size_t n, struct gguf **g, char *err, size_t errlen)
{
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n) memcpy(copy, p, n);
    int rc = gguf_open_mem(g, copy, n, err, errlen);
    if (rc == 0) {
        /* Touch every tensor byte while the buffer is alive. */
        volatile uint8_t sink = 0;
        for (uint64_t i = 0; i < (*g)->n_tensors; i++) {
            const uint8_t *d = (*g)->tensors[i].data;
            for (uint64_t j = 0; j < (*g)->tensors[i].nbytes; j++) sink ^= d[j];
        }
        (void)sink;
        gguf_close(*g);
        *g = NULL;
    }
    free(copy);
    return rc;
}

/* ---- the malformed-file table ----------------------------------------------------------- */

static const uint64_t NE_4[] = {4}, NE_8[] = {8}, NE_32[] = {32}, NE_4x2[] = {4, 2};

static void c_empty(struct bb *b) { (void)b; }
static void c_bad_magic(struct bb *b)
{
    bb_put(b, "GGML", 4);
    u32(b, 3);
    u64(b, 0);
    u64(b, 0);
}
static void c_v1(struct bb *b) { hdr(b, 1, 0, 0); }
static void c_v4(struct bb *b) { hdr(b, 4, 0, 0); }
static void c_big_endian(struct bb *b) { hdr(b, 0x03000000u, 0, 0); }
static void c_trunc_version(struct bb *b)
{
    bb_put(b, "GGUF", 4);
    u8(b, 3);
}
static void c_trunc_ntensors(struct bb *b)
{
    bb_put(b, "GGUF", 4);
    u32(b, 3);
    u32(b, 0);
}
static void c_trunc_nkv(struct bb *b)
{
    bb_put(b, "GGUF", 4);
    u32(b, 3);
    u64(b, 0);
    u32(b, 1);
}
static void c_ntensors_overflow(struct bb *b)
{
    hdr(b, 3, UINT64_C(1) << 63, 0);
    zeros(b, 64);
}
static void c_nkv_too_big(struct bb *b)
{
    hdr(b, 3, 0, 1000);
    kv_u32(b, "a.b", 1);
}
static void c_nkv_max(struct bb *b)
{
    hdr(b, 3, 0, UINT64_MAX);
    kv_u32(b, "a.b", 1);
}
static void c_huge_key_len(struct bb *b)
{
    hdr(b, 3, 0, 1);
    u64(b, UINT64_MAX);
    u32(b, GGUF_VT_UINT32);
    u32(b, 0);
}
static void c_huge_str_val(struct bb *b)
{
    hdr(b, 3, 0, 1);
    str(b, "general.name");
    u32(b, GGUF_VT_STRING);
    u64(b, UINT64_C(1) << 40);
    bb_put(b, "abc", 3);
}
static void c_empty_key(struct bb *b)
{
    hdr(b, 3, 0, 1);
    kv_u32(b, "", 1);
}
static void c_ctrl_key(struct bb *b)
{
    hdr(b, 3, 0, 1);
    kv_u32(b, "bad\nkey", 1);
}
static void c_nonascii_key(struct bb *b)
{
    hdr(b, 3, 0, 1);
    kv_u32(b, "k\xff\xfe", 1);
}
static void c_bad_vtype(struct bb *b)
{
    hdr(b, 3, 0, 1);
    str(b, "a.b");
    u32(b, 13);
    u32(b, 0);
}
static void c_bad_bool(struct bb *b)
{
    hdr(b, 3, 0, 1);
    str(b, "a.flag");
    u32(b, GGUF_VT_BOOL);
    u8(b, 2);
}
static void c_trunc_value(struct bb *b)
{
    hdr(b, 3, 0, 1);
    str(b, "llama.block_count");
    u32(b, GGUF_VT_UINT32);
    u8(b, 5);
}
static void c_trunc_kv_type(struct bb *b)
{
    hdr(b, 3, 0, 1);
    str(b, "llama.block_count");
    u8(b, 4);
}
static void c_nested_array(struct bb *b)
{
    hdr(b, 3, 0, 1);
    str(b, "a.nest");
    u32(b, GGUF_VT_ARRAY);
    u32(b, GGUF_VT_ARRAY);
    u64(b, 1000000);
    for (int i = 0; i < 8; i++) {   /* the start of a deep nest: arrays of arrays ... */
        u32(b, GGUF_VT_ARRAY);
        u64(b, 1000000);
    }
}
static void c_arr_overflow(struct bb *b)
{
    hdr(b, 3, 0, 1);
    str(b, "a.arr");
    u32(b, GGUF_VT_ARRAY);
    u32(b, GGUF_VT_UINT64);
    u64(b, UINT64_C(1) << 61);   /* × 8 bytes wraps to 0 */
    zeros(b, 16);
}
static void c_arr_bad_elem_type(struct bb *b)
{
    hdr(b, 3, 0, 1);
    str(b, "a.arr");
    u32(b, GGUF_VT_ARRAY);
    u32(b, 77);
    u64(b, 1);
    zeros(b, 8);
}
static void c_str_arr_count(struct bb *b)
{
    hdr(b, 3, 0, 1);
    str(b, "tokenizer.ggml.tokens");
    u32(b, GGUF_VT_ARRAY);
    u32(b, GGUF_VT_STRING);
    u64(b, UINT64_C(1) << 60);
    str(b, "a");
    str(b, "b");
}
static void c_str_arr_elem(struct bb *b)
{
    hdr(b, 3, 0, 1);
    str(b, "tokenizer.ggml.tokens");
    u32(b, GGUF_VT_ARRAY);
    u32(b, GGUF_VT_STRING);
    u64(b, 2);
    str(b, "a");
    u64(b, UINT64_MAX - 3);
    bb_put(b, "xyz", 3);
}
static void c_dup_key(struct bb *b)
{
    hdr(b, 3, 0, 3);
    kv_str(b, "general.name", "a");
    kv_u32(b, "llama.block_count", 2);
    kv_str(b, "general.name", "b");
}
static void c_align_zero(struct bb *b)
{
    hdr(b, 3, 0, 1);
    kv_u32(b, "general.alignment", 0);
}
static void c_align_npot(struct bb *b)
{
    hdr(b, 3, 0, 1);
    kv_u32(b, "general.alignment", 48);
}
static void c_align_type(struct bb *b)
{
    hdr(b, 3, 0, 1);
    kv_str(b, "general.alignment", "32");
}
static void c_ndims_zero(struct bb *b)
{
    hdr(b, 3, 1, 0);
    tinfo(b, "t", 0, NULL, GGUF_T_F32, 0);
    pad32(b);
    zeros(b, 32);
}
static void c_ndims_five(struct bb *b)
{
    static const uint64_t ne[] = {1, 1, 1, 1, 1};
    hdr(b, 3, 1, 0);
    tinfo(b, "t", 5, ne, GGUF_T_F32, 0);
    pad32(b);
    zeros(b, 32);
}
static void c_zero_dim(struct bb *b)
{
    static const uint64_t ne[] = {4, 0};
    hdr(b, 3, 1, 0);
    tinfo(b, "blk.0.attn_q.weight", 2, ne, GGUF_T_F32, 0);
    pad32(b);
    zeros(b, 32);
}
static void c_dim_overflow(struct bb *b)
{
    static const uint64_t ne[] = {UINT64_C(1) << 32, UINT64_C(1) << 32};
    hdr(b, 3, 1, 0);
    tinfo(b, "t", 2, ne, GGUF_T_F32, 0);
    pad32(b);
    zeros(b, 32);
}
static void c_bytes_overflow(struct bb *b)
{
    static const uint64_t ne[] = {UINT64_C(1) << 62};
    hdr(b, 3, 1, 0);
    tinfo(b, "t", 1, ne, GGUF_T_F32, 0);
    pad32(b);
    zeros(b, 32);
}
static void c_unknown_type(struct bb *b)
{
    hdr(b, 3, 1, 0);
    tinfo(b, "t", 1, NE_32, 4, 0);   /* 4 was the removed Q4_2 */
    pad32(b);
    zeros(b, 128);
}
static void c_huge_type(struct bb *b)
{
    hdr(b, 3, 1, 0);
    tinfo(b, "t", 1, NE_32, 0xffffffffu, 0);
    pad32(b);
    zeros(b, 128);
}
static void c_not_block_multiple(struct bb *b)
{
    static const uint64_t ne[] = {33, 2};
    hdr(b, 3, 1, 0);
    tinfo(b, "blk.0.ffn_up.weight", 2, ne, GGUF_T_Q8_0, 0);
    pad32(b);
    zeros(b, 256);
}
static void c_misaligned(struct bb *b)
{
    hdr(b, 3, 1, 0);
    tinfo(b, "t", 1, NE_4, GGUF_T_F32, 4);
    pad32(b);
    zeros(b, 64);
}
static void c_past_eof(struct bb *b)
{
    hdr(b, 3, 2, 0);
    tinfo(b, "output_norm.weight", 1, NE_8, GGUF_T_F32, 0);
    tinfo(b, "blk.0.attn_q.weight", 2, NE_4x2, GGUF_T_F32, 32);
    pad32(b);
    zeros(b, 32 + 16);   /* the second tensor needs 32 */
}
static void c_offset_wraps(struct bb *b)
{
    hdr(b, 3, 1, 0);
    tinfo(b, "t", 1, NE_8, GGUF_T_F32, UINT64_MAX - 31);
    pad32(b);
    zeros(b, 32);
}
static void c_overlap(struct bb *b)
{
    static const uint64_t ne[] = {16};
    hdr(b, 3, 2, 0);
    tinfo(b, "a", 1, ne, GGUF_T_F32, 0);    /* [0, 64) */
    tinfo(b, "b", 1, NE_8, GGUF_T_F32, 32);  /* [32, 64) */
    pad32(b);
    zeros(b, 64);
}
static void c_dup_tensor(struct bb *b)
{
    hdr(b, 3, 2, 0);
    tinfo(b, "token_embd.weight", 1, NE_8, GGUF_T_F32, 0);
    tinfo(b, "token_embd.weight", 1, NE_8, GGUF_T_F32, 32);
    pad32(b);
    zeros(b, 64);
}
static void c_empty_tensor_name(struct bb *b)
{
    hdr(b, 3, 1, 0);
    tinfo(b, "", 1, NE_8, GGUF_T_F32, 0);
    pad32(b);
    zeros(b, 32);
}
static void c_long_tensor_name(struct bb *b)
{
    char name[2001];
    memset(name, 'x', 2000);
    name[2000] = 0;
    hdr(b, 3, 1, 0);
    tinfo(b, name, 1, NE_8, GGUF_T_F32, 0);
    pad32(b);
    zeros(b, 32);
}
static void c_trunc_tensor_dims(struct bb *b)
{
    hdr(b, 3, 1, 0);
    str(b, "t");
    u32(b, 3);
    u64(b, 4);
    u64(b, 4);
    zeros(b, 3);   /* 32 bytes of tensor info pass the count check; ne[2] needs 8 */
}
static void c_no_data_section(struct bb *b)
{
    hdr(b, 3, 1, 0);
    tinfo(b, "t", 1, NE_8, GGUF_T_F32, 0);
    u8(b, 0);   /* ends before the aligned data section */
}

struct bad_case {
    const char *name;
    void (*build)(struct bb *b);
    const char *expect;
};

static const struct bad_case bad_cases[] = {
    {"empty file", c_empty, "truncated reading the magic"},
    {"bad magic", c_bad_magic, "bad magic 'GGML'"},
    {"version 1", c_v1, "version 1 (32-bit counts) is not supported"},
    {"version 4", c_v4, "version 4 unsupported"},
    {"big-endian", c_big_endian, "big-endian"},
    {"truncated version", c_trunc_version, "truncated reading the version"},
    {"truncated n_tensors", c_trunc_ntensors, "truncated reading n_tensors"},
    {"truncated n_kv", c_trunc_nkv, "truncated reading n_kv"},
    {"n_tensors overflow", c_ntensors_overflow, "n_tensors 9223372036854775808 is impossible"},
    {"n_kv larger than file", c_nkv_too_big, "n_kv 1000 is impossible"},
    {"n_kv UINT64_MAX", c_nkv_max, "n_kv 18446744073709551615 is impossible"},
    {"huge key length", c_huge_key_len, "key 0 length 18446744073709551615"},
    {"huge string length", c_huge_str_val, "value of key 0 'general.name' length 1099511627776"},
    {"empty key", c_empty_key, "key 0 is empty"},
    {"control byte in key", c_ctrl_key, "key 0 'bad\\x0akey' has byte 0x0a"},
    {"non-ASCII key", c_nonascii_key, "has byte 0xff at position 1"},
    {"unknown value type", c_bad_vtype, "key 0 'a.b': unknown value type 13"},
    {"bool not 0/1", c_bad_bool, "bool value 2 is not 0 or 1"},
    {"truncated value", c_trunc_value, "truncated reading the value of key 0 'llama.block_count'"},
    {"truncated value type", c_trunc_kv_type, "truncated reading the value type of key 0"},
    {"nested array bomb", c_nested_array, "nested arrays are not supported"},
    {"array count x size overflow", c_arr_overflow,
     "array of 2305843009213693952 u64 elements exceeds"},
    {"array element type", c_arr_bad_elem_type, "unknown array element type 77"},
    {"string array count", c_str_arr_count, "array of 1152921504606846976 strings exceeds"},
    {"string array element length", c_str_arr_elem,
     "element 1 of key 0 'tokenizer.ggml.tokens' length"},
    {"duplicate key", c_dup_key, "duplicate key 'general.name' (entries 0 and 2)"},
    {"alignment 0", c_align_zero, "general.alignment 0 is not a nonzero power of two"},
    {"alignment 48", c_align_npot, "general.alignment 48 is not a nonzero power of two"},
    {"alignment type", c_align_type, "general.alignment has type string, expected u32"},
    {"n_dims 0", c_ndims_zero, "tensor 0 't': n_dims 0 is not in 1..4"},
    {"n_dims 5", c_ndims_five, "n_dims 5 is not in 1..4"},
    {"zero dim", c_zero_dim, "tensor 0 'blk.0.attn_q.weight': ne[1] is 0"},
    {"dim product overflow", c_dim_overflow, "element count overflows at ne[1]"},
    {"byte size overflow", c_bytes_overflow, "byte size overflows"},
    {"unknown tensor type", c_unknown_type, "unknown tensor type 4"},
    {"huge tensor type", c_huge_type, "unknown tensor type 4294967295"},
    {"ne[0] not block multiple", c_not_block_multiple,
     "ne[0] = 33 is not a multiple of the Q8_0 block size 32"},
    {"misaligned offset", c_misaligned, "data offset 4 is not a multiple of the alignment 32"},
    {"tensor past EOF", c_past_eof,
     "tensor 1 'blk.0.attn_q.weight': data [32, 64) past end of file"},
    {"offset wraps around", c_offset_wraps, "past end of file"},
    {"overlapping tensors", c_overlap, "overlaps tensor 0 'a'"},
    {"duplicate tensor", c_dup_tensor, "duplicate tensor name 'token_embd.weight'"},
    {"empty tensor name", c_empty_tensor_name, "tensor 0 name is empty"},
    {"long tensor name", c_long_tensor_name, "tensor 0 name length 2000 exceeds the limit"},
    {"truncated tensor dims", c_trunc_tensor_dims, "truncated reading ne[2] of tensor 0 't'"},
    {"no data section", c_no_data_section, "past end of file"},
};

static void test_malformed_table(void **state)
{
    (void)state;
    size_t n = sizeof bad_cases / sizeof bad_cases[0];
    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++) {
        struct bb b = {0};
        bad_cases[i].build(&b);
        struct gguf *g = (struct gguf *)1;
        char err[512] = "";
        int rc = open_bytes(b.p, b.n, &g, err, sizeof err);
        if (rc == 0 || !strstr(err, bad_cases[i].expect) || strncmp(err, "gguf: ", 6) != 0)
            fail_msg("case '%s': rc %d, error \"%s\", expected it to contain \"%s\"",
                     bad_cases[i].name, rc, err, bad_cases[i].expect);
        assert_null(g);
        free(b.p);
    }
}

/* ---- a valid small file with every value type --------------------------------------- */

static void build_valid(struct bb *b)
{
    hdr(b, 3, 3, 9);
    kv_str(b, "general.architecture", "llama");
    kv_u32(b, "llama.embedding_length", 8);
    str(b, "llama.rope.freq_base");
    u32(b, GGUF_VT_FLOAT32);
    float fb = 10000.0f;
    bb_put(b, &fb, 4);
    str(b, "tokenizer.ggml.tokens");
    u32(b, GGUF_VT_ARRAY);
    u32(b, GGUF_VT_STRING);
    u64(b, 3);
    str(b, "<unk>");
    str(b, "");
    str(b, "\xe2\x96\x81the");
    str(b, "tokenizer.ggml.scores");
    u32(b, GGUF_VT_ARRAY);
    u32(b, GGUF_VT_FLOAT32);
    u64(b, 3);
    float sc[3] = {0.0f, -1.5f, -2.25f};
    bb_put(b, sc, sizeof sc);
    str(b, "tokenizer.ggml.add_bos_token");
    u32(b, GGUF_VT_BOOL);
    u8(b, 1);
    str(b, "a.i64");
    u32(b, GGUF_VT_INT64);
    u64(b, (uint64_t)-5);
    str(b, "a.u64big");
    u32(b, GGUF_VT_UINT64);
    u64(b, UINT64_C(1) << 40);
    str(b, "a.i16arr");
    u32(b, GGUF_VT_ARRAY);
    u32(b, GGUF_VT_INT16);
    u64(b, 2);
    u32(b, 0xfffe0007u);   /* 7, -2 */
    static const uint64_t ne_emb[] = {32, 2};
    tinfo(b, "token_embd.weight", 2, ne_emb, GGUF_T_Q8_0, 0);   /* 68 bytes */
    tinfo(b, "output_norm.weight", 1, NE_8, GGUF_T_F32, 96);    /* 32 bytes */
    tinfo(b, "blk.0.attn_q.weight", 2, NE_4x2, GGUF_T_F16, 128); /* 16 bytes */
    pad32(b);
    for (int i = 0; i < 144; i++) u8(b, (uint8_t)i);
}

static void test_valid_and_getters(void **state)
{
    (void)state;
    struct bb b = {0};
    build_valid(&b);
    struct gguf *g;
    char err[256];
    int rc = gguf_open_mem(&g, b.p, b.n, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_int_equal(g->version, 3);
    assert_int_equal(g->n_tensors, 3);
    assert_int_equal(g->alignment, 32);
    assert_int_equal(g->data_offset % 32, 0);

    uint32_t u;
    uint64_t u64v;
    int32_t i32;
    float f;
    int bl;
    struct gguf_str s;
    char kb[64];
    assert_int_equal(gguf_get_u32(g, "llama.embedding_length", &u), 0);
    assert_int_equal(u, 8);
    assert_string_equal(gguf_arch_key(g, "embedding_length", kb, sizeof kb),
                        "llama.embedding_length");
    assert_null(gguf_arch_key(g, "embedding_length", kb, 8));   /* too small a buffer */
    assert_int_equal(gguf_get_u32(g, "llama.missing", &u), -1);
    /* Wrong types for known keys. */
    assert_int_equal(gguf_get_u32(g, "general.architecture", &u), -2);
    assert_int_equal(gguf_get_str(g, "llama.embedding_length", &s), -2);
    assert_int_equal(gguf_get_f32(g, "llama.embedding_length", &f), -2);
    assert_int_equal(gguf_get_bool(g, "llama.embedding_length", &bl), -2);
    assert_int_equal(gguf_get_u32(g, "tokenizer.ggml.tokens", &u), -2);
    assert_int_equal(gguf_get_u32(g, "llama.rope.freq_base", &u), -2);
    assert_int_equal(gguf_get_u32(g, "a.i64", &u), -2);   /* negative */
    assert_int_equal(gguf_get_i32(g, "a.i64", &i32), 0);
    assert_int_equal(i32, -5);
    assert_int_equal(gguf_get_u32(g, "a.u64big", &u), -2);   /* does not fit */
    assert_int_equal(gguf_get_i32(g, "a.u64big", &i32), -2);
    assert_int_equal(gguf_get_u64(g, "a.u64big", &u64v), 0);
    assert_true(u64v == UINT64_C(1) << 40);
    assert_int_equal(gguf_get_u64(g, "llama.embedding_length", &u64v), 0);
    assert_int_equal(u64v, 8);
    assert_int_equal(gguf_get_f32(g, "llama.rope.freq_base", &f), 0);
    assert_true(f == 10000.0f);
    assert_int_equal(gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &bl), 0);
    assert_int_equal(bl, 1);
    assert_int_equal(gguf_get_str(g, "general.architecture", &s), 0);
    assert_int_equal(s.len, 5);
    assert_memory_equal(s.ptr, "llama", 5);

    const struct gguf_kv *tok = gguf_find(g, "tokenizer.ggml.tokens");
    assert_non_null(tok);
    assert_int_equal(tok->arr_n, 3);
    assert_int_equal(gguf_arr_str(tok, 2, &s), 0);
    assert_int_equal(s.len, 6);
    assert_memory_equal(s.ptr, "\xe2\x96\x81the", 6);
    assert_int_equal(gguf_arr_str(tok, 1, &s), 0);
    assert_int_equal(s.len, 0);
    assert_int_equal(gguf_arr_str(tok, 3, &s), -2);
    assert_int_equal(gguf_arr_f32(tok, 0, &f), -2);
    assert_int_equal(gguf_arr_str(NULL, 0, &s), -1);
    const struct gguf_kv *scores = gguf_find(g, "tokenizer.ggml.scores");
    assert_int_equal(gguf_arr_f32(scores, 2, &f), 0);
    assert_true(f == -2.25f);
    assert_int_equal(gguf_arr_i32(scores, 0, &i32), -2);
    assert_int_equal(gguf_arr_f32(scores, 3, &f), -2);
    const struct gguf_kv *i16 = gguf_find(g, "a.i16arr");
    assert_int_equal(gguf_arr_i32(i16, 0, &i32), 0);
    assert_int_equal(i32, 7);
    assert_int_equal(gguf_arr_i32(i16, 1, &i32), 0);
    assert_int_equal(i32, -2);

    const struct gguf_tensor *t = gguf_tensor(g, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->type, GGUF_T_Q8_0);
    assert_int_equal(t->nbytes, 68);
    assert_int_equal(t->ne[0], 32);
    assert_int_equal(t->ne[1], 2);
    assert_int_equal(t->ne[2], 1);
    assert_ptr_equal(t->data, b.p + g->data_offset);
    t = gguf_tensor(g, "blk.0.attn_q.weight");
    assert_non_null(t);
    assert_int_equal(t->nbytes, 16);
    assert_int_equal(((const uint8_t *)t->data)[0], 128);
    assert_null(gguf_tensor(g, "blk.0.attn_k.weight"));
    assert_null(gguf_find(g, "general"));
    gguf_close(g);

    /* Version 2 has the same layout (64-bit counts) and is accepted. */
    b.p[4] = 2;
    if (gguf_open_mem(&g, b.p, b.n, err, sizeof err)) fail_msg("v2: %s", err);
    assert_int_equal(g->version, 2);
    gguf_close(g);
    free(b.p);
}

/* Every proper prefix of a valid file must be rejected cleanly. */
static void test_truncation_sweep(void **state)
{
    (void)state;
    struct bb b = {0};
    build_valid(&b);
    char err[512];
    struct gguf *g;
    assert_int_equal(open_bytes(b.p, b.n, &g, err, sizeof err), 0);
    for (size_t n = 0; n < b.n; n++) {
        err[0] = 0;
        if (open_bytes(b.p, n, &g, err, sizeof err) == 0)
            fail_msg("prefix of %zu/%zu bytes was accepted", n, b.n);
        if (strncmp(err, "gguf: ", 6) != 0) fail_msg("prefix %zu: no error message", n);
    }
    free(b.p);
}

/* Random byte mutations must never crash; accepted files must still be self-consistent. */
static void test_mutation_sweep(void **state)
{
    (void)state;
    struct bb b = {0};
    build_valid(&b);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int accepted = 0, rejected = 0;
    for (int iter = 0; iter < 4000; iter++) {
        uint8_t *m = malloc(b.n);
        assert_non_null(m);
        memcpy(m, b.p, b.n);
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            testrng_next(&x);
            size_t pos = (size_t)(x % b.n);
            uint8_t v = (uint8_t)(x >> 32);
            if (iter % 3 == 0) v = (uint8_t)(x >> 40) & 1 ? 0xff : 0x00;
            m[pos] = v;
        }
        struct gguf *g;
        char err[512];
        if (gguf_open_mem(&g, m, b.n, err, sizeof err) == 0) {
            accepted++;
            for (uint64_t i = 0; i < g->n_tensors; i++) {
                const struct gguf_tensor *t = &g->tensors[i];
                assert_true((const uint8_t *)t->data >= m);
                assert_true((const uint8_t *)t->data + t->nbytes <= m + b.n);
            }
            for (uint64_t i = 0; i < g->n_kv; i++) {
                const struct gguf_kv *kv = &g->kv[i];
                struct gguf_str s;
                if (kv->type == GGUF_VT_ARRAY && kv->arr_type == GGUF_VT_STRING)
                    for (uint64_t j = 0; j < kv->arr_n; j++) {
                        assert_int_equal(gguf_arr_str(kv, j, &s), 0);
                        assert_true((const uint8_t *)s.ptr + s.len <= m + b.n);
                    }
            }
            gguf_close(g);
        } else {
            rejected++;
            assert_true(strncmp(err, "gguf: ", 6) == 0);
        }
        free(m);
    }
    assert_true(rejected > 0);
    print_message("mutations: %d accepted, %d rejected\n", accepted, rejected);
    free(b.p);
}

static void test_type_geometry(void **state)
{
    (void)state;
    static const struct {
        uint32_t t;
        const char *name;
        uint64_t be, bb;
    } want[] = {
        {GGUF_T_F32, "F32", 1, 4},       {GGUF_T_F16, "F16", 1, 2},
        {GGUF_T_BF16, "BF16", 1, 2},     {GGUF_T_Q4_0, "Q4_0", 32, 18},
        {GGUF_T_Q4_1, "Q4_1", 32, 20},   {GGUF_T_Q5_0, "Q5_0", 32, 22},
        {GGUF_T_Q5_1, "Q5_1", 32, 24},   {GGUF_T_Q8_0, "Q8_0", 32, 34},
        {GGUF_T_Q8_1, "Q8_1", 32, 36},   {GGUF_T_Q2_K, "Q2_K", 256, 84},
        {GGUF_T_Q3_K, "Q3_K", 256, 110}, {GGUF_T_Q4_K, "Q4_K", 256, 144},
        {GGUF_T_Q5_K, "Q5_K", 256, 176}, {GGUF_T_Q6_K, "Q6_K", 256, 210},
        {GGUF_T_Q8_K, "Q8_K", 256, 292},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_string_equal(gguf_type_name(want[i].t), want[i].name);
        assert_int_equal(gguf_type_block_elems(want[i].t), want[i].be);
        assert_int_equal(gguf_type_block_bytes(want[i].t), want[i].bb);
    }
    uint64_t rb;
    assert_int_equal(gguf_row_bytes(GGUF_T_Q4_K, 512, &rb), 0);
    assert_int_equal(rb, 288);
    assert_int_equal(gguf_row_bytes(GGUF_T_Q4_K, 100, &rb), -1);
    assert_int_equal(gguf_row_bytes(GGUF_T_F32, UINT64_MAX / 2, &rb), -1);
    assert_int_equal(gguf_row_bytes(4, 32, &rb), -1);
    assert_int_equal(gguf_row_bytes(5000, 32, &rb), -1);
    assert_string_equal(gguf_type_name(4), "unknown");
    assert_string_equal(gguf_type_name(12345), "unknown");
    assert_int_equal(gguf_type_block_elems(12345), 0);
}

/* ---- the real model -------------------------------------------------------------------- */

static void test_stories260k(void **state)
{
    (void)state;
    const char *path = tu_shared("models/stories260K.gguf");
    struct gguf *g;
    char err[512], kb[128];
    if (gguf_open(&g, path, err, sizeof err)) fail_msg("%s", err);
    assert_true(g->owns_map);
    assert_int_equal(g->version, 3);
    struct gguf_str s;
    assert_int_equal(gguf_get_str(g, "general.architecture", &s), 0);
    assert_int_equal(s.len, 5);
    assert_memory_equal(s.ptr, "llama", 5);
    static const struct {
        const char *suffix;
        uint32_t v;
    } want[] = {
        {"embedding_length", 64}, {"block_count", 5},           {"attention.head_count", 8},
        {"attention.head_count_kv", 4}, {"feed_forward_length", 172}, {"context_length", 2048},
        {"rope.dimension_count", 8},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        uint32_t v = 0;
        assert_non_null(gguf_arch_key(g, want[i].suffix, kb, sizeof kb));
        assert_int_equal(gguf_get_u32(g, kb, &v), 0);
        assert_int_equal(v, want[i].v);
    }
    float eps;
    assert_int_equal(gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps), 0);
    assert_true(fabsf(eps - 1e-5f) < 1e-9f);
    const struct gguf_kv *tok = gguf_find(g, "tokenizer.ggml.tokens");
    assert_non_null(tok);
    assert_int_equal(tok->arr_n, 512);
    assert_int_equal(gguf_arr_str(tok, 1, &s), 0);
    assert_int_equal(s.len, 3);
    assert_memory_equal(s.ptr, "<s>", 3);
    assert_int_equal(gguf_arr_str(tok, 3, &s), 0);   /* byte tokens follow the specials */
    assert_memory_equal(s.ptr, "<0x00>", 6);
    uint32_t bos, eos;
    assert_int_equal(gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos), 0);
    assert_int_equal(gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos), 0);
    assert_int_equal(bos, 1);
    assert_int_equal(eos, 2);

    assert_int_equal(g->n_tensors, 3 + 5 * 9);
    static const struct {
        const char *name;
        uint64_t ne0, ne1;
    } shapes[] = {
        {"token_embd.weight", 64, 512},     {"output_norm.weight", 64, 1},
        {"output.weight", 64, 512},         {"blk.0.attn_q.weight", 64, 64},
        {"blk.0.attn_k.weight", 64, 32},    {"blk.4.attn_v.weight", 64, 32},
        {"blk.2.attn_output.weight", 64, 64}, {"blk.3.ffn_gate.weight", 64, 172},
        {"blk.3.ffn_down.weight", 172, 64}, {"blk.1.ffn_up.weight", 64, 172},
        {"blk.4.ffn_norm.weight", 64, 1},   {"blk.0.attn_norm.weight", 64, 1},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct gguf_tensor *t = gguf_tensor(g, shapes[i].name);
        if (!t) fail_msg("missing tensor %s", shapes[i].name);
        assert_int_equal(t->type, GGUF_T_F32);
        assert_int_equal(t->ne[0], shapes[i].ne0);
        assert_int_equal(t->ne[1], shapes[i].ne1);
        assert_int_equal(t->nbytes, shapes[i].ne0 * shapes[i].ne1 * 4);
        /* Weights are real numbers, not padding. */
        float w0;
        memcpy(&w0, t->data, 4);
        assert_true(isfinite(w0));
    }
    assert_null(gguf_tensor(g, "blk.5.attn_q.weight"));

    /* Every prefix that cuts the header (metadata, tensor infos, padding) or the first
     * tensor is rejected; each from an exact-size heap copy so ASan catches over-reads. */
    size_t upto = (size_t)g->data_offset + 64;
    for (size_t n = 0; n < upto; n++) {
        struct gguf *h;
        err[0] = 0;
        if (open_bytes(g->map, n, &h, err, sizeof err) == 0)
            fail_msg("stories260K prefix of %zu bytes accepted", n);
        if (strncmp(err, "gguf: ", 6) != 0) fail_msg("prefix %zu: no error message", n);
    }
    gguf_close(g);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct gguf *g;
    char err[512];
    assert_int_equal(gguf_open(&g, "/nonexistent/model.gguf", err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open /nonexistent/model.gguf"));
    assert_int_equal(gguf_open(&g, "/tmp", err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));
    char p[512];
    char *dir = tu_tmpfile("empty.gguf", p, sizeof p);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(gguf_open(&g, p, err, sizeof err), -1);
    assert_non_null(strstr(err, "is empty"));
    f = fopen(p, "wb");
    fwrite("GGUF\1\0\0\0", 1, 8, f);
    fclose(f);
    assert_int_equal(gguf_open(&g, p, err, sizeof err), -1);
    assert_non_null(strstr(err, p));   /* file errors name the file */
    assert_non_null(strstr(err, "version 1"));
    /* A tiny error buffer truncates without overflowing. */
    char small[8];
    assert_int_equal(gguf_open(&g, p, small, sizeof small), -1);
    assert_int_equal(strlen(small), 7);
    tu_rmtree(dir);
}

/* ---- writer round trip ------------------------------------------------------------------ */

struct fill_ctx {
    uint64_t calls, bytes;
};

static int fill_pattern(void *ctx, void *dst, uint64_t off, uint64_t n)
{
    struct fill_ctx *c = ctx;
    c->calls++;
    c->bytes += n;
    for (uint64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = (uint8_t)((off + i) * 7 + 3);
    return 0;
}

static int fill_fail(void *ctx, void *dst, uint64_t off, uint64_t n)
{
    (void)ctx, (void)dst, (void)off, (void)n;
    return -1;
}

static void test_writer_round_trip(void **state)
{
    (void)state;
    char path[512], err[512];
    char *dir = tu_tmpfile("rt.gguf", path, sizeof path);
    struct gguf_out *w = gguf_out_new();
    assert_non_null(w);
    gguf_out_str(w, "general.architecture", "llama");
    gguf_out_u32(w, "llama.block_count", 7);
    gguf_out_u32(w, "llama.block_count", 3);   /* replaces */
    gguf_out_i32(w, "a.i32", -9);
    gguf_out_u64(w, "a.u64", UINT64_C(1) << 50);
    gguf_out_f32(w, "a.f32", 0.125f);
    gguf_out_bool(w, "a.bool", 1);
    const char *toks[] = {"<unk>", "<s>", "", "\xe2\x96\x81hello"};
    gguf_out_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
    float sc[] = {0, 0, -1, -2.5f};
    gguf_out_arr_f32(w, "tokenizer.ggml.scores", sc, 4);
    int32_t tt[] = {2, 3, 1, 1};
    gguf_out_arr_i32(w, "tokenizer.ggml.token_type", tt, 4);
    float small[6] = {1, 2, 3, 4, 5, 6};
    uint64_t ne_small[] = {3, 2};
    gguf_out_tensor(w, "small", GGUF_T_F32, 2, ne_small, small);
    /* 5 MB of Q8_0 rows: streamed in more than one chunk. */
    uint64_t ne_big[] = {4096, 1200};
    struct fill_ctx fc = {0, 0};
    gguf_out_tensor_fn(w, "big", GGUF_T_Q8_0, 2, ne_big, fill_pattern, &fc);
    if (gguf_out_write(w, path, err, sizeof err)) fail_msg("%s", err);
    gguf_out_free(w);
    assert_true(fc.calls > 1);
    assert_int_equal(fc.bytes, 4096 / 32 * 34 * 1200);

    struct gguf *g;
    if (gguf_open(&g, path, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(g->n_kv, 9);
    uint32_t u;
    int32_t i;
    uint64_t u64v;
    float f;
    int bl;
    struct gguf_str s;
    assert_int_equal(gguf_get_u32(g, "llama.block_count", &u), 0);
    assert_int_equal(u, 3);
    assert_int_equal(gguf_get_i32(g, "a.i32", &i), 0);
    assert_int_equal(i, -9);
    assert_int_equal(gguf_get_u64(g, "a.u64", &u64v), 0);
    assert_true(u64v == UINT64_C(1) << 50);
    assert_int_equal(gguf_get_f32(g, "a.f32", &f), 0);
    assert_true(f == 0.125f);
    assert_int_equal(gguf_get_bool(g, "a.bool", &bl), 0);
    assert_int_equal(bl, 1);
    const struct gguf_kv *kv = gguf_find(g, "tokenizer.ggml.tokens");
    for (int k = 0; k < 4; k++) {
        assert_int_equal(gguf_arr_str(kv, (uint64_t)k, &s), 0);
        assert_int_equal(s.len, strlen(toks[k]));
        assert_memory_equal(s.ptr, toks[k], s.len);
    }
    assert_int_equal(gguf_arr_f32(gguf_find(g, "tokenizer.ggml.scores"), 3, &f), 0);
    assert_true(f == -2.5f);
    assert_int_equal(gguf_arr_i32(gguf_find(g, "tokenizer.ggml.token_type"), 1, &i), 0);
    assert_int_equal(i, 3);
    const struct gguf_tensor *t = gguf_tensor(g, "small");
    assert_non_null(t);
    assert_memory_equal(t->data, small, sizeof small);
    t = gguf_tensor(g, "big");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 4096);
    assert_int_equal(t->ne[1], 1200);
    assert_int_equal(t->offset % 32, 0);
    const uint8_t *d = t->data;
    for (uint64_t k = 0; k < t->nbytes; k += 4099)
        assert_int_equal(d[k], (uint8_t)(k * 7 + 3));

    /* gguf_out_copy: copy the tokenizer into a second file and compare. */
    char path2[512];
    snprintf(path2, sizeof path2, "%s/copy.gguf", dir);
    w = gguf_out_new();
    gguf_out_copy(w, g, "tokenizer.");
    gguf_out_str(w, "general.architecture", "llama");
    if (gguf_out_write(w, path2, err, sizeof err)) fail_msg("%s", err);
    gguf_out_free(w);
    struct gguf *g2;
    if (gguf_open(&g2, path2, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(g2->n_kv, 4);
    assert_int_equal(g2->n_tensors, 0);
    kv = gguf_find(g2, "tokenizer.ggml.tokens");
    assert_non_null(kv);
    assert_int_equal(gguf_arr_str(kv, 3, &s), 0);
    assert_memory_equal(s.ptr, toks[3], strlen(toks[3]));
    assert_int_equal(gguf_arr_i32(gguf_find(g2, "tokenizer.ggml.token_type"), 0, &i), 0);
    assert_int_equal(i, 2);
    gguf_close(g2);
    gguf_close(g);

    /* Writer errors: invalid shapes, duplicate tensors, failing fills leave no file. */
    w = gguf_out_new();
    uint64_t bad_ne[] = {33};
    gguf_out_tensor_fn(w, "x", GGUF_T_Q8_0, 1, bad_ne, fill_pattern, &fc);
    assert_int_equal(gguf_out_write(w, path2, err, sizeof err), -1);
    assert_non_null(strstr(err, "'x'"));
    gguf_out_free(w);
    w = gguf_out_new();
    float row33[33] = {0};
    gguf_out_tensor(w, "x", GGUF_T_F32, 1, bad_ne, row33);
    gguf_out_tensor(w, "x", GGUF_T_F32, 1, bad_ne, row33);
    assert_int_equal(gguf_out_write(w, path2, err, sizeof err), -1);
    assert_non_null(strstr(err, "duplicate tensor 'x'"));
    gguf_out_free(w);
    char path3[512];
    snprintf(path3, sizeof path3, "%s/fail.gguf", dir);
    w = gguf_out_new();
    gguf_out_tensor_fn(w, "x", GGUF_T_F32, 1, ne_small, fill_fail, NULL);
    assert_int_equal(gguf_out_write(w, path3, err, sizeof err), -1);
    assert_non_null(strstr(err, "filling tensor 'x' failed"));
    gguf_out_free(w);
    assert_int_not_equal(access(path3, F_OK), 0);
    tu_rmtree(dir);
}

TU_MAIN(
    cmocka_unit_test(test_type_geometry),
    cmocka_unit_test(test_valid_and_getters),
    cmocka_unit_test(test_malformed_table),
    cmocka_unit_test(test_truncation_sweep),
    cmocka_unit_test(test_mutation_sweep),
    cmocka_unit_test(test_open_errors),
    cmocka_unit_test(test_writer_round_trip),
    cmocka_unit_test(test_stories260k))
