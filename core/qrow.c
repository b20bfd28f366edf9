/* core/qrow: one-row dequantizer over the ggml block layouts, written from the format
 * description and kept small: the core only decodes embedding rows with it. Results are
 * bit-identical to gpu/quant's reference dequantizer (same operations, same order). */
#include "core/qrow.h"

#include "core/gguf.h"

#include <string.h>

static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, u;
    if (e == 31) {
        u = s | 0x7f800000u | (m ? 0x400000u | (m << 13) : 0);
    } else if (e) {
        u = s | ((e + 112) << 23) | (m << 13);
    } else if (!m) {
        u = s;
    } else {                                /* subnormal: value m * 2^-24, normalised */
        e = 113;
        while (!(m & 1024)) { m <<= 1; e--; }
        u = s | (e << 23) | ((m & 1023) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* The types this decoder handles; their block geometry is core/gguf's type table. */
static int supported(uint32_t type)
{
    switch (type) {
    case GGUF_T_F32: case GGUF_T_F16: case GGUF_T_BF16: case GGUF_T_Q4_0: case GGUF_T_Q8_0:
    case GGUF_T_Q4_K: case GGUF_T_Q5_K: case GGUF_T_Q6_K: return 1;
    default: return 0;
    }
}

size_t qrow_bytes(uint32_t type, size_t n)
{
    if (!supported(type)) return 0;
    size_t elems = (size_t)gguf_type_block_elems(type);
    return n % elems == 0 ? n / elems * (size_t)gguf_type_block_bytes(type) : 0;
}

/* 6-bit scale and min of sub-block j from the 12 packed bytes of Q4_K/Q5_K. */
static void k4_scale(const uint8_t *p, int j, int *sc, int *mn)
{
    if (j < 4) {
        *sc = p[j] & 63;
        *mn = p[j + 4] & 63;
    } else {
        *sc = (p[j + 4] & 15) | ((p[j - 4] >> 6) << 4);
        *mn = (p[j + 4] >> 4) | ((p[j] >> 6) << 4);
    }
}

int qrow_dequant(uint32_t type, const void *src, float *dst, size_t n)
{
    if (!supported(type)) return -1;
    size_t elems = (size_t)gguf_type_block_elems(type), bytes = (size_t)gguf_type_block_bytes(type);
    if (n % elems) return -1;
    const uint8_t *b = src;
    size_t nb = n / elems;
    for (size_t i = 0; i < nb; i++, b += bytes) {
        float *y = dst + i * elems;
        switch (type) {
        case GGUF_T_F32: memcpy(y, b, 4); break;
        case GGUF_T_F16: y[0] = half_to_float(rd16(b)); break;
        case GGUF_T_BF16: {
            uint32_t u = (uint32_t)rd16(b) << 16;
            memcpy(y, &u, 4);
            break;
        }
        case GGUF_T_Q4_0: {   /* Q4_0: d, then 16 bytes: low nibbles elements 0..15, high 16..31 */
            float d = half_to_float(rd16(b));
            for (int k = 0; k < 16; k++) {
                y[k] = (float)((b[2 + k] & 15) - 8) * d;
                y[k + 16] = (float)((b[2 + k] >> 4) - 8) * d;
            }
            break;
        }
        case GGUF_T_Q8_0: {   /* Q8_0: d, then 32 signed bytes */
            float d = half_to_float(rd16(b));
            for (int k = 0; k < 32; k++) y[k] = (float)(int8_t)b[2 + k] * d;
            break;
        }
        case GGUF_T_Q4_K: case GGUF_T_Q5_K: {   /* Q4_K / Q5_K: d, dmin, scales[12], (qh[32],) qs[128] */
            float d = half_to_float(rd16(b)), dm = half_to_float(rd16(b + 2));
            const uint8_t *sc = b + 4, *qh = b + 16, *qs = b + (type == GGUF_T_Q5_K ? 48 : 16);
            for (int j = 0; j < 8; j++) {
                int s, m;
                k4_scale(sc, j, &s, &m);
                float dl = d * (float)s, ml = dm * (float)m;
                const uint8_t *q = qs + 32 * (j / 2);
                for (int l = 0; l < 32; l++) {
                    int v = (q[l] >> (4 * (j & 1))) & 15;
                    if (type == GGUF_T_Q5_K) v |= ((qh[l] >> j) & 1) << 4;
                    y[32 * j + l] = dl * (float)v - ml;
                }
            }
            break;
        }
        case GGUF_T_Q6_K: {   /* Q6_K: ql[128], qh[64], int8 scales[16], d */
            float d = half_to_float(rd16(b + 208));
            for (int e = 0; e < 256; e++) {
                int h = e / 128, c = (e % 128) / 32, l = e % 32;
                int lo = (b[64 * h + 32 * (c & 1) + l] >> (4 * (c >> 1))) & 15;
                int hi = (b[128 + 32 * h + l] >> (2 * c)) & 3;
                int sc = (int8_t)b[192 + e / 16];
                y[e] = d * (float)(sc * ((lo | (hi << 4)) - 32));
            }
            break;
        }
        }
    }
    return 0;
}
