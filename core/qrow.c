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
    case GGUF_T_Q4_K: case GGUF_T_Q5_K: case GGUF_T_Q6_K: case GGUF_T_Q4_1: case GGUF_T_Q5_0:
    case GGUF_T_Q5_1: case GGUF_T_Q2_K: case GGUF_T_Q3_K: case GGUF_T_IQ4_NL: case GGUF_T_IQ4_XS:
        return 1;
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

/* The non-uniform 4-bit grid of IQ4_NL and IQ4_XS. */
static const int8_t iq4_grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

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
        case GGUF_T_Q4_1: case GGUF_T_Q5_0: case GGUF_T_Q5_1: {
            /* d, (m,) (qh[4]: the fifth bit of element j is bit j,) qs[16] as Q4_0's */
            int hasm = type != GGUF_T_Q5_0, five = type != GGUF_T_Q4_1;
            float d = half_to_float(rd16(b)), m = hasm ? half_to_float(rd16(b + 2)) : 0;
            const uint8_t *qh = b + (hasm ? 4 : 2), *qs = qh + (five ? 4 : 0);
            uint32_t h = five ? (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24 : 0;
            for (int k = 0; k < 16; k++) {
                int v0 = (qs[k] & 15) | (int)(((h >> k) & 1) << 4), v1 = (qs[k] >> 4) | (int)(((h >> (k + 16)) & 1) << 4);
                if (hasm) {
                    y[k] = (float)v0 * d + m;
                    y[k + 16] = (float)v1 * d + m;
                } else {
                    y[k] = (float)(v0 - 16) * d;
                    y[k + 16] = (float)(v1 - 16) * d;
                }
            }
            break;
        }
        case GGUF_T_Q2_K: case GGUF_T_Q3_K: {
            /* Q2_K: scales[16] (scale | min << 4), qs[64], d, dmin.
             * Q3_K: hmask[32], qs[64], scales[12] (16 six-bit values, +32), d.
             * Element e = 128h + 32j + l: bits 2j of qs[32h + l] (Q3_K: bit 4h + j of
             * hmask[l] clear means -4); group e / 16 has its own scale. */
            int three = type == GGUF_T_Q3_K;
            const uint8_t *qs = b + (three ? 32 : 16), *sc = b + (three ? 96 : 0);
            float d = half_to_float(rd16(b + (three ? 108 : 80))), dm = three ? 0 : half_to_float(rd16(b + 82));
            for (int e = 0; e < 256; e++) {
                int h = e / 128, j = (e % 128) / 32, l = e % 32, g = e / 16;
                int q = (qs[32 * h + l] >> (2 * j)) & 3;
                if (three) {
                    int s = (((sc[g % 8] >> (4 * (g / 8))) & 15) | (((sc[8 + g % 4] >> (2 * (g / 4))) & 3) << 4)) - 32;
                    q -= (b[l] >> (4 * h + j)) & 1 ? 0 : 4;
                    y[e] = d * (float)s * (float)q;
                } else {
                    y[e] = d * (float)(sc[g] & 15) * (float)q - dm * (float)(sc[g] >> 4);
                }
            }
            break;
        }
        case GGUF_T_IQ4_NL: {   /* d, qs[16]: grid indices, low nibbles elements 0..15 */
            float d = half_to_float(rd16(b));
            for (int k = 0; k < 16; k++) {
                y[k] = d * (float)iq4_grid[b[2 + k] & 15];
                y[k + 16] = d * (float)iq4_grid[b[2 + k] >> 4];
            }
            break;
        }
        case GGUF_T_IQ4_XS: {   /* d, scales_h (2 bits each), scales_l[4] (4 bits each), qs[128] */
            float d = half_to_float(rd16(b));
            uint16_t sh = rd16(b + 2);
            for (int ib = 0; ib < 8; ib++) {
                int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
                float dl = d * (float)(ls - 32);
                const uint8_t *qs = b + 8 + 16 * ib;
                for (int k = 0; k < 16; k++) {
                    y[32 * ib + k] = dl * (float)iq4_grid[qs[k] & 15];
                    y[32 * ib + k + 16] = dl * (float)iq4_grid[qs[k] >> 4];
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
