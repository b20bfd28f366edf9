/* Shared helpers for the cmif OpenCL kernels (this file is compiled first).
 * Half floats are decoded with integer bit operations so correctness never depends on
 * cl_khr_fp16 (NVIDIA's OpenCL has none). Quantized rows are read as bytes in ggml's
 * block layouts; a "unit" is 32 consecutive elements of a row. The block sizes in bytes
 * (BLK_Q4_0 ...) come from gpu/quant's type table, in the build options. */

#ifndef BLK_Q4_0
#error "BLK_* block sizes are set by gpu/backend_cl.c from qt_block_bytes"
#endif

#ifndef MV_LS
#define MV_LS 64
#endif
#ifndef NORM_LS
#define NORM_LS 64
#endif
#ifndef ATT_LS
#define ATT_LS 64
#endif

inline float h2f(uint h)
{
    /* Branch-free: normal, subnormal (m * 2^-24) and inf/nan computed, one selected. */
    uint s = (h & 0x8000u) << 16;
    uint e = (h >> 10) & 0x1fu;
    uint m = h & 0x3ffu;
    float normal = as_float(s | ((e + 112u) << 23) | (m << 13));
    float sub = as_float(as_uint((float)m * 5.9604644775390625e-8f) | s);
    float special = as_float(s | 0x7f800000u | (m << 13));
    float r = e == 0u ? sub : normal;
    return e == 31u ? special : r;
}

inline float ld_h(global const uchar *p) { return h2f((uint)p[0] | ((uint)p[1] << 8)); }

inline float bf2f(uint b) { return as_float(b << 16); }

/* Work-group sum of v over MV_LS-style groups of size n (power of two). */
inline float wg_sum(local float *red, float v, int lid, int n)
{
    red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = n >> 1; s > 0; s >>= 1) {
        if (lid < s) red[lid] += red[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

inline float wg_max(local float *red, float v, int lid, int n)
{
    red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = n >> 1; s > 0; s >>= 1) {
        if (lid < s) red[lid] = fmax(red[lid], red[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* K-quant 6-bit scale and min of sub-block j (0..7) from the 12 packed scale bytes:
 * j < 4: low 6 bits of bytes j and j+4; j >= 4: a nibble of byte j+4 plus the top two
 * bits of bytes j-4 and j. Branch-free. */
inline void kq_scale_min(int j, global const uchar *q, float *sc, float *mn)
{
    int jj = j & 3;
    uint a = q[jj], b = q[jj + 4], c = q[jj + 8];
    uint hi = (uint)(j >> 2);
    uint d = hi ? ((c & 15u) | ((a >> 6) << 4)) : (a & 63u);
    uint m = hi ? ((c >> 4) | ((b >> 6) << 4)) : (b & 63u);
    *sc = (float)d;
    *mn = (float)m;
}

/* 16 half floats at once, same bit rules as h2f. */
inline float16 h2f16(ushort16 hv)
{
    uint16 h = convert_uint16(hv);
    uint16 s = (h & 0x8000u) << 16;
    uint16 e = (h >> 10) & 0x1fu;
    uint16 m = h & 0x3ffu;
    float16 normal = as_float16(s | ((e + 112u) << 23) | (m << 13));
    float16 sub = convert_float16(m) * 5.9604644775390625e-8f;
    sub = as_float16(as_uint16(sub) | s);
    float16 special = as_float16(s | 0x7f800000u | (m << 13));
    int16 is_sub = convert_int16(e == 0u), is_special = convert_int16(e == 31u);
    float16 r = select(normal, sub, is_sub);
    return select(r, special, is_special);
}

inline float16 bf2f16(ushort16 b) { return as_float16(convert_uint16(b) << 16); }

inline float hsum16(float16 v)
{
    float8 t = v.lo + v.hi;
    float4 u = t.lo + t.hi;
    return (u.x + u.y) + (u.z + u.w);
}

/* Decoders of unit u (32 elements) of a row: elements 0..15 into *a, 16..31 into *b.
 * Vector types let CPU OpenCL compilers use SIMD; GPUs simply scalarise them. Shifts by a
 * run-time amount are done on 32-bit lanes (x86 has no byte-vector shifts, and LLVM
 * scalarises uchar16 shifts by a variable). */

inline void unit_q4_0(global const uchar *row, int u, float16 *a, float16 *b)
{
    global const uchar *blk = row + (size_t)u * BLK_Q4_0;
    float d = ld_h(blk);
    uchar16 q = vload16(0, blk + 2);
    *a = d * (convert_float16(q & (uchar)15) - 8.0f);
    *b = d * (convert_float16(q >> (uchar)4) - 8.0f);
}

inline void unit_q8_0(global const uchar *row, int u, float16 *a, float16 *b)
{
    global const uchar *blk = row + (size_t)u * BLK_Q8_0;
    float d = ld_h(blk);
    global const char *qs = (global const char *)(blk + 2);
    *a = d * convert_float16(vload16(0, qs));
    *b = d * convert_float16(vload16(1, qs));
}

/* Q4_K and Q5_K (five: a fifth bit per element from qh at +16, nibbles at +48 instead of
 * +16); callers pass a constant, so each instance compiles to its own straight code. */
inline void unit_q45_k(global const uchar *row, int u, float16 *a, float16 *b, int five)
{
    global const uchar *blk = row + (size_t)(u >> 3) * (five ? BLK_Q5_K : BLK_Q4_K);
    int s = u & 7;
    float d = ld_h(blk), dmin = ld_h(blk + 2), sc, mn;
    kq_scale_min(s, blk + 4, &sc, &mn);
    float d1 = d * sc, m1 = dmin * mn;
    global const uchar *q = blk + (five ? 48 : 16) + 32 * (s >> 1);
    int sh = (s & 1) * 4;
    int16 v0 = (convert_int16(vload16(0, q)) >> sh) & 15;
    int16 v1 = (convert_int16(vload16(1, q)) >> sh) & 15;
    if (five) {
        global const uchar *qh = blk + 16;
        v0 |= ((convert_int16(vload16(0, qh)) >> s) & 1) << 4;
        v1 |= ((convert_int16(vload16(1, qh)) >> s) & 1) << 4;
    }
    *a = d1 * convert_float16(v0) - m1;
    *b = d1 * convert_float16(v1) - m1;
}

inline void unit_q4_k(global const uchar *row, int u, float16 *a, float16 *b)
{
    unit_q45_k(row, u, a, b, 0);
}

inline void unit_q5_k(global const uchar *row, int u, float16 *a, float16 *b)
{
    unit_q45_k(row, u, a, b, 1);
}

inline void unit_q6_k(global const uchar *row, int u, float16 *a, float16 *b)
{
    global const uchar *blk = row + (size_t)(u >> 3) * BLK_Q6_K;
    int s = u & 7, n = s >> 2, g = s & 3;
    float d = ld_h(blk + 208);
    global const uchar *ql = blk + 64 * n + (g & 1) * 32;
    global const uchar *qh = blk + 128 + 32 * n;
    global const char *sc = (global const char *)(blk + 192) + 8 * n + 2 * g;
    int shl = (g >> 1) * 4, shh = g * 2;
    int16 v0 = ((convert_int16(vload16(0, ql)) >> shl) & 15) |
               (((convert_int16(vload16(0, qh)) >> shh) & 3) << 4);
    int16 v1 = ((convert_int16(vload16(1, ql)) >> shl) & 15) |
               (((convert_int16(vload16(1, qh)) >> shh) & 3) << 4);
    *a = (d * (float)sc[0]) * (convert_float16(v0) - 32.0f);
    *b = (d * (float)sc[1]) * (convert_float16(v1) - 32.0f);
}

/* Legacy 32-element blocks: Q4_1 (d, m, qs), Q5_0 (d, qh, qs), Q5_1 (d, m, qh, qs); the
 * fifth bit of element j is bit j of the little-endian qh word. */
inline uint ld_u32(global const uchar *p)
{
    return (uint)p[0] | ((uint)p[1] << 8) | ((uint)p[2] << 16) | ((uint)p[3] << 24);
}

inline void unit_q4_1(global const uchar *row, int u, float16 *a, float16 *b)
{
    global const uchar *blk = row + (size_t)u * BLK_Q4_1;
    float d = ld_h(blk), m = ld_h(blk + 2);
    uchar16 q = vload16(0, blk + 4);
    *a = d * convert_float16(q & (uchar)15) + m;
    *b = d * convert_float16(q >> (uchar)4) + m;
}

/* The fifth bits of a unit: elements 0..15 and 16..31, as 0 or 16. */
inline void q5_high(uint h, int16 *h0, int16 *h1)
{
    const uint16 sh = (uint16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    *h0 = convert_int16(((uint16)(h) >> sh) & 1u) << 4;
    *h1 = convert_int16(((uint16)(h >> 16) >> sh) & 1u) << 4;
}

inline void unit_q5_0(global const uchar *row, int u, float16 *a, float16 *b)
{
    global const uchar *blk = row + (size_t)u * BLK_Q5_0;
    float d = ld_h(blk);
    int16 h0, h1, q = convert_int16(vload16(0, blk + 6));
    q5_high(ld_u32(blk + 2), &h0, &h1);
    *a = d * convert_float16(((q & 15) | h0) - 16);
    *b = d * convert_float16(((q >> 4) | h1) - 16);
}

inline void unit_q5_1(global const uchar *row, int u, float16 *a, float16 *b)
{
    global const uchar *blk = row + (size_t)u * BLK_Q5_1;
    float d = ld_h(blk), m = ld_h(blk + 2);
    int16 h0, h1, q = convert_int16(vload16(0, blk + 8));
    q5_high(ld_u32(blk + 4), &h0, &h1);
    *a = d * convert_float16((q & 15) | h0) + m;
    *b = d * convert_float16((q >> 4) | h1) + m;
}

/* The IQ4_NL / IQ4_XS grid, and 16 packed bytes' low (hi = 0) or high nibbles looked up. */
constant float iq4_grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

inline float16 iq4_lookup(global const uchar *qs, int hi)
{
    float t[16];
    for (int k = 0; k < 16; k++) t[k] = iq4_grid[(qs[k] >> (4 * hi)) & 15];
    return vload16(0, t);
}

inline void unit_iq4_nl(global const uchar *row, int u, float16 *a, float16 *b)
{
    global const uchar *blk = row + (size_t)u * BLK_IQ4_NL;
    float d = ld_h(blk);
    *a = d * iq4_lookup(blk + 2, 0);
    *b = d * iq4_lookup(blk + 2, 1);
}

/* IQ4_XS: d, scales_h (2 bits per sub-block), scales_l[4] (4 bits), qs[128]; unit u is
 * sub-block u & 7 of block u >> 3. */
inline void unit_iq4_xs(global const uchar *row, int u, float16 *a, float16 *b)
{
    global const uchar *blk = row + (size_t)(u >> 3) * BLK_IQ4_XS;
    int ib = u & 7;
    uint sh = (uint)blk[2] | ((uint)blk[3] << 8);
    int ls = (int)(((blk[4 + ib / 2] >> (4 * (ib & 1))) & 15) | (((sh >> (2 * ib)) & 3) << 4));
    float dl = ld_h(blk) * (float)(ls - 32);
    *a = dl * iq4_lookup(blk + 8 + 16 * ib, 0);
    *b = dl * iq4_lookup(blk + 8 + 16 * ib, 1);
}

/* Q2_K (scales[16], qs[64], d, dmin) and Q3_K (hmask[32], qs[64], scales[12], d): unit
 * s = u & 7 is elements 32s.. of the block, half s >> 2, bits 2·(s & 3) of qs; its two
 * 16-element groups are 2s and 2s + 1. */
inline void unit_q2_k(global const uchar *row, int u, float16 *a, float16 *b)
{
    global const uchar *blk = row + (size_t)(u >> 3) * BLK_Q2_K;
    int s = u & 7, sh = 2 * (s & 3);
    float d = ld_h(blk + 80), dmin = ld_h(blk + 82);
    global const uchar *q = blk + 16 + 32 * (s >> 2);
    uint s0 = blk[2 * s], s1 = blk[2 * s + 1];
    int16 v0 = (convert_int16(vload16(0, q)) >> sh) & 3, v1 = (convert_int16(vload16(1, q)) >> sh) & 3;
    *a = (d * (float)(s0 & 15u)) * convert_float16(v0) - dmin * (float)(s0 >> 4);
    *b = (d * (float)(s1 & 15u)) * convert_float16(v1) - dmin * (float)(s1 >> 4);
}

inline int q3k_scale(global const uchar *sc, int g)
{
    return (int)(((sc[g % 8] >> (4 * (g / 8))) & 15) | (((sc[8 + g % 4] >> (2 * (g / 4))) & 3) << 4)) - 32;
}

inline void unit_q3_k(global const uchar *row, int u, float16 *a, float16 *b)
{
    global const uchar *blk = row + (size_t)(u >> 3) * BLK_Q3_K;
    int s = u & 7, sh = 2 * (s & 3), hb = s;   /* hmask bit 4·half + j = s */
    float d = ld_h(blk + 108);
    global const uchar *q = blk + 32 + 32 * (s >> 2);
    int16 v0 = ((convert_int16(vload16(0, q)) >> sh) & 3) | (((convert_int16(vload16(0, blk)) >> hb) & 1) << 2);
    int16 v1 = ((convert_int16(vload16(1, q)) >> sh) & 3) | (((convert_int16(vload16(1, blk)) >> hb) & 1) << 2);
    *a = (d * (float)q3k_scale(blk + 96, 2 * s)) * convert_float16(v0 - 4);
    *b = (d * (float)q3k_scale(blk + 96, 2 * s + 1)) * convert_float16(v1 - 4);
}
