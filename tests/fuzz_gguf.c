/* libFuzzer target for core/gguf (`make fuzz` builds and runs every tests/fuzz_*.c target;
 * a few seconds each in `make test`). By hand:
 *
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined \
 *         tests/fuzz_gguf.c core/gguf.c -o /tmp/fuzz_gguf
 *   mkdir -p /tmp/gguf-corpus && cp ../shared/models/stories260K.gguf /tmp/gguf-corpus/
 *   /tmp/fuzz_gguf -max_len=65536 -max_total_time=60 /tmp/gguf-corpus
 *
 * Every input must either be rejected with a "gguf: " message or open into a handle whose
 * strings, arrays and tensors all lie inside the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"

static void check_in(const void *p, uint64_t n, const uint8_t *buf, size_t size)
{
    const uint8_t *b = p;
    if (b < buf || b > buf + size || n > (uint64_t)(buf + size - b)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gguf *g;
    char err[512];
    if (gguf_open_mem(&g, data, size, err, sizeof err)) {
        if (strncmp(err, "gguf: ", 6) != 0) abort();
        return 0;
    }
    char kb[128];
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const struct gguf_kv *kv = &g->kv[i];
        check_in(kv->key.ptr, kv->key.len, data, size);
        snprintf(kb, sizeof kb, "%.*s", (int)kv->key.len, kv->key.ptr);
        if (gguf_find(g, kb) != kv && strlen(kb) == kv->key.len) abort();
        uint32_t u;
        uint64_t u64;
        int32_t i32;
        float f;
        int b;
        struct gguf_str s;
        (void)gguf_get_u32(g, kb, &u);
        (void)gguf_get_u64(g, kb, &u64);
        (void)gguf_get_i32(g, kb, &i32);
        (void)gguf_get_f32(g, kb, &f);
        (void)gguf_get_bool(g, kb, &b);
        if (gguf_get_str(g, kb, &s) == 0) check_in(s.ptr, s.len, data, size);
        if (kv->type == GGUF_VT_ARRAY)
            for (uint64_t j = 0; j < kv->arr_n && j < 4096; j++) {
                if (gguf_arr_str(kv, j, &s) == 0) check_in(s.ptr, s.len, data, size);
                (void)gguf_arr_f32(kv, j, &f);
                (void)gguf_arr_i32(kv, j, &i32);
            }
    }
    (void)gguf_arch_key(g, "embedding_length", kb, sizeof kb);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct gguf_tensor *t = &g->tensors[i];
        check_in(t->name.ptr, t->name.len, data, size);
        check_in(t->data, t->nbytes, data, size);
    }
    gguf_close(g);
    return 0;
}
