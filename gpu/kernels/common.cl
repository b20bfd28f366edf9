/* Shared helpers for the cmif OpenCL kernels (this file is compiled first).
 * Half floats are decoded with integer bit operations so correctness never depends on
 * cl_khr_fp16 (NVIDIA's OpenCL has none). Quantized rows are read as bytes in ggml's
 * block layouts; a "unit" is 32 consecutive elements of a row. */

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
    uint s = (h & 0x8000u) << 16;
    uint e = (h >> 10) & 0x1fu;
    uint m = h & 0x3ffu;
    if (e == 0) {
        /* zero or subnormal: m * 2^-24 */
        float f = (float)m * 5.9604644775390625e-8f;
        return s ? -f : f;
    }
    if (e == 31) return as_float(s | 0x7f800000u | (m << 13));
    return as_float(s | ((e + 112u) << 23) | (m << 13));
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

/* K-quant 6-bit scale and min of sub-block j from the 12 packed scale bytes. */
inline void kq_scale_min(int j, global const uchar *q, float *sc, float *mn)
{
    uint d, m;
    if (j < 4) {
        d = q[j] & 63u;
        m = q[j + 4] & 63u;
    } else {
        d = (q[j + 4] & 0xFu) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
    *sc = (float)d;
    *mn = (float)m;
}

/* Decoders of unit u of a row into out[32]. */

inline void unit_q4_0(global const uchar *row, int u, float *out)
{
    global const uchar *b = row + (size_t)u * 18;
    float d = ld_h(b);
    global const uchar *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        uint q = qs[j];
        out[j] = d * (float)((int)(q & 15u) - 8);
        out[j + 16] = d * (float)((int)(q >> 4) - 8);
    }
}

inline void unit_q8_0(global const uchar *row, int u, float *out)
{
    global const uchar *b = row + (size_t)u * 34;
    float d = ld_h(b);
    global const char *qs = (global const char *)(b + 2);
    for (int j = 0; j < 32; j++) out[j] = d * (float)qs[j];
}

inline void unit_q4_k(global const uchar *row, int u, float *out)
{
    global const uchar *b = row + (size_t)(u >> 3) * 144;
    int s = u & 7;
    float d = ld_h(b), dmin = ld_h(b + 2), sc, mn;
    kq_scale_min(s, b + 4, &sc, &mn);
    float d1 = d * sc, m1 = dmin * mn;
    global const uchar *q = b + 16 + 32 * (s >> 1);
    uint sh = (uint)(s & 1) * 4u;
    for (int l = 0; l < 32; l++) out[l] = d1 * (float)((q[l] >> sh) & 15u) - m1;
}

inline void unit_q5_k(global const uchar *row, int u, float *out)
{
    global const uchar *b = row + (size_t)(u >> 3) * 176;
    int s = u & 7;
    float d = ld_h(b), dmin = ld_h(b + 2), sc, mn;
    kq_scale_min(s, b + 4, &sc, &mn);
    float d1 = d * sc, m1 = dmin * mn;
    global const uchar *qh = b + 16;
    global const uchar *q = b + 48 + 32 * (s >> 1);
    uint sh = (uint)(s & 1) * 4u;
    for (int l = 0; l < 32; l++) {
        uint v = ((q[l] >> sh) & 15u) | (((qh[l] >> s) & 1u) << 4);
        out[l] = d1 * (float)v - m1;
    }
}

inline void unit_q6_k(global const uchar *row, int u, float *out)
{
    global const uchar *b = row + (size_t)(u >> 3) * 210;
    int s = u & 7, n = s >> 2, g = s & 3;
    float d = ld_h(b + 208);
    global const uchar *ql = b + 64 * n + (g & 1) * 32;
    global const uchar *qh = b + 128 + 32 * n;
    global const char *sc = (global const char *)(b + 192) + 8 * n + 2 * g;
    uint shl = (uint)(g >> 1) * 4u, shh = (uint)g * 2u;
    float d0 = d * (float)sc[0], d1 = d * (float)sc[1];
    for (int l = 0; l < 32; l++) {
        int v = (int)(((ql[l] >> shl) & 15u) | (((qh[l] >> shh) & 3u) << 4)) - 32;
        out[l] = (l < 16 ? d0 : d1) * (float)v;
    }
}
