/* Fused dequantize + matrix-vector products for single-token decode, and dequantize
 * kernels that expand a tile of rows to F32 for CLBlast SGEMM in prompt batches.
 *
 * mv_*: one work-group of MV_LS work-items per row; adjacent work-items read adjacent
 * blocks (coalesced), each keeps a private partial sum, and the group reduces them in
 * local memory. y[row] = dot(row, x), or y[row] += dot when acc (residual adds). */

/* Every mv_ kernel's signature, and its end: the group's partial sums reduced, stored or
 * added to y[r] by work-item 0. */
#define MV_KERNEL(NAME)                                                                    \
kernel void mv_##NAME(global const uchar *W, ulong woff, int cols, global const float *x,  \
                      global float *y, int acc)

inline void mv_finish(local float *red, float s, int lid, int r, global float *y, int acc)
{
    s = wg_sum(red, s, lid, MV_LS);
    if (lid == 0) y[r] = acc ? y[r] + s : s;
}

#define MV_QUANT(NAME, UNIT, BYTES, UPB)                                                   \
MV_KERNEL(NAME)                                                                            \
{                                                                                          \
    local float red[MV_LS];                                                                \
    int r = get_group_id(0), lid = get_local_id(0);                                        \
    size_t rb = (size_t)(cols / (32 * UPB)) * BYTES;                                       \
    global const uchar *row = W + woff + (size_t)r * rb;                                   \
    int nu = cols / 32;                                                                    \
    float16 s16 = (float16)(0.0f);                                                         \
    for (int u = lid; u < nu; u += MV_LS) {                                                \
        float16 a, b;                                                                      \
        UNIT(row, u, &a, &b);                                                              \
        s16 += a * vload16(2 * u, x) + b * vload16(2 * u + 1, x);                          \
    }                                                                                      \
    mv_finish(red, hsum16(s16), lid, r, y, acc);                                           \
}

#define DQ_QUANT(NAME, UNIT, BYTES, UPB)                                                   \
kernel void dq_##NAME(global const uchar *W, ulong woff, int cols, global float *out)      \
{                                                                                          \
    size_t gid = get_global_id(0);                                                         \
    int nu = cols / 32;                                                                    \
    size_t r = gid / nu;                                                                   \
    int u = (int)(gid % nu);                                                               \
    size_t rb = (size_t)(cols / (32 * UPB)) * BYTES;                                       \
    float16 a, b;                                                                          \
    UNIT(W + woff + r * rb, u, &a, &b);                                                    \
    global float *o = out + r * (size_t)cols + 32 * u;                                     \
    vstore16(a, 0, o);                                                                     \
    vstore16(b, 1, o);                                                                     \
}

MV_QUANT(q4_0, unit_q4_0, BLK_Q4_0, 1)
MV_QUANT(q8_0, unit_q8_0, BLK_Q8_0, 1)
DQ_QUANT(q4_0, unit_q4_0, BLK_Q4_0, 1)
DQ_QUANT(q8_0, unit_q8_0, BLK_Q8_0, 1)
DQ_QUANT(q4_k, unit_q4_k, BLK_Q4_K, 8)
DQ_QUANT(q5_k, unit_q5_k, BLK_Q5_K, 8)
DQ_QUANT(q6_k, unit_q6_k, BLK_Q6_K, 8)

/* The other formats run per 32-element unit on every device. */
MV_QUANT(q4_1, unit_q4_1, BLK_Q4_1, 1)
MV_QUANT(q5_0, unit_q5_0, BLK_Q5_0, 1)
MV_QUANT(q5_1, unit_q5_1, BLK_Q5_1, 1)
MV_QUANT(iq4_nl, unit_iq4_nl, BLK_IQ4_NL, 1)
MV_QUANT(q2_k, unit_q2_k, BLK_Q2_K, 8)
MV_QUANT(q3_k, unit_q3_k, BLK_Q3_K, 8)
MV_QUANT(iq4_xs, unit_iq4_xs, BLK_IQ4_XS, 8)
DQ_QUANT(q4_1, unit_q4_1, BLK_Q4_1, 1)
DQ_QUANT(q5_0, unit_q5_0, BLK_Q5_0, 1)
DQ_QUANT(q5_1, unit_q5_1, BLK_Q5_1, 1)
DQ_QUANT(iq4_nl, unit_iq4_nl, BLK_IQ4_NL, 1)
DQ_QUANT(q2_k, unit_q2_k, BLK_Q2_K, 8)
DQ_QUANT(q3_k, unit_q3_k, BLK_Q3_K, 8)
DQ_QUANT(iq4_xs, unit_iq4_xs, BLK_IQ4_XS, 8)

/* K-quants: on GPUs (wide groups) work-items take 32-element units so a row keeps the
 * whole group busy; on CPU devices (MV_KBLOCK) a work-item takes whole 256-element blocks,
 * decoding d, dmin and the packed scales once per block and using both nibbles of every
 * byte it loads, which is several times cheaper per element. */
#ifdef MV_KBLOCK
/* Q4_K and Q5_K (five as in unit_q45_k). */
inline float16 blkdot_q45_k(global const uchar *blk, global const float *x, int five)
{
    float d = ld_h(blk), dmin = ld_h(blk + 2);
    int16 h0 = (int16)(0), h1 = (int16)(0);
    if (five) {
        h0 = convert_int16(vload16(0, blk + 16));
        h1 = convert_int16(vload16(1, blk + 16));
    }
    float16 acc = (float16)(0.0f);
    for (int c = 0; c < 4; c++) {
        float s0, m0, s1, m1;
        kq_scale_min(2 * c, blk + 4, &s0, &m0);
        kq_scale_min(2 * c + 1, blk + 4, &s1, &m1);
        global const uchar *q = blk + (five ? 48 : 16) + 32 * c;
        int16 q0 = convert_int16(vload16(0, q)), q1 = convert_int16(vload16(1, q));
        int16 l0 = q0 & 15, l1 = q1 & 15, u0 = q0 >> 4, u1 = q1 >> 4;
        if (five) {
            int b0 = 2 * c, b1 = 2 * c + 1;
            l0 |= ((h0 >> b0) & 1) << 4;
            l1 |= ((h1 >> b0) & 1) << 4;
            u0 |= ((h0 >> b1) & 1) << 4;
            u1 |= ((h1 >> b1) & 1) << 4;
        }
        float d0 = d * s0, n0 = dmin * m0, d1 = d * s1, n1 = dmin * m1;
        global const float *xx = x + 64 * c;
        acc += (d0 * convert_float16(l0) - n0) * vload16(0, xx);
        acc += (d0 * convert_float16(l1) - n0) * vload16(1, xx);
        acc += (d1 * convert_float16(u0) - n1) * vload16(2, xx);
        acc += (d1 * convert_float16(u1) - n1) * vload16(3, xx);
    }
    return acc;
}

inline float16 blkdot_q4_k(global const uchar *blk, global const float *x)
{
    return blkdot_q45_k(blk, x, 0);
}

inline float16 blkdot_q5_k(global const uchar *blk, global const float *x)
{
    return blkdot_q45_k(blk, x, 1);
}

inline float16 blkdot_q6_k(global const uchar *blk, global const float *x)
{
    float d = ld_h(blk + 208);
    float16 acc = (float16)(0.0f);
    for (int n = 0; n < 2; n++) {
        global const uchar *ql = blk + 64 * n;
        global const uchar *qh = blk + 128 + 32 * n;
        global const char *sc = (global const char *)(blk + 192) + 8 * n;
        global const float *xx = x + 128 * n;
        for (int hh = 0; hh < 2; hh++) {
            int16 a = convert_int16(vload16(hh, ql)), b = convert_int16(vload16(hh + 2, ql));
            int16 h = convert_int16(vload16(hh, qh));
            int16 v1 = ((a & 15) | ((h & 3) << 4)) - 32;
            int16 v2 = ((b & 15) | (((h >> 2) & 3) << 4)) - 32;
            int16 v3 = ((a >> 4) | (((h >> 4) & 3) << 4)) - 32;
            int16 v4 = ((b >> 4) | (((h >> 6) & 3) << 4)) - 32;
            acc += (d * (float)sc[hh]) * convert_float16(v1) * vload16(hh, xx);
            acc += (d * (float)sc[hh + 2]) * convert_float16(v2) * vload16(hh + 2, xx);
            acc += (d * (float)sc[hh + 4]) * convert_float16(v3) * vload16(hh + 4, xx);
            acc += (d * (float)sc[hh + 6]) * convert_float16(v4) * vload16(hh + 6, xx);
        }
    }
    return acc;
}

#define MV_KQUANT(NAME, BYTES)                                                             \
MV_KERNEL(NAME)                                                                            \
{                                                                                          \
    local float red[MV_LS];                                                                \
    int r = get_group_id(0), lid = get_local_id(0);                                        \
    int nb = cols / 256;                                                                   \
    global const uchar *row = W + woff + (size_t)r * nb * BYTES;                           \
    float16 s16 = (float16)(0.0f);                                                         \
    for (int b = lid; b < nb; b += MV_LS)                                                  \
        s16 += blkdot_##NAME(row + (size_t)b * BYTES, x + 256 * b);                        \
    mv_finish(red, hsum16(s16), lid, r, y, acc);                                           \
}
MV_KQUANT(q4_k, BLK_Q4_K)
MV_KQUANT(q5_k, BLK_Q5_K)
MV_KQUANT(q6_k, BLK_Q6_K)
#else
MV_QUANT(q4_k, unit_q4_k, BLK_Q4_K, 8)
MV_QUANT(q5_k, unit_q5_k, BLK_Q5_K, 8)
MV_QUANT(q6_k, unit_q6_k, BLK_Q6_K, 8)
#endif

/* Float rows of any length: 16 elements at a time, then a scalar tail. */
#define MV_FLOAT(NAME, T, LOAD16, CONV)                                                    \
MV_KERNEL(NAME)                                                                            \
{                                                                                          \
    local float red[MV_LS];                                                                \
    int r = get_group_id(0), lid = get_local_id(0);                                        \
    global const T *row = (global const T *)(W + woff) + (size_t)r * cols;                 \
    float16 s16 = (float16)(0.0f);                                                         \
    int nv = cols / 16;                                                                    \
    for (int c = lid; c < nv; c += MV_LS) s16 += LOAD16(vload16(c, row)) * vload16(c, x);  \
    float s = hsum16(s16);                                                                 \
    for (int i = nv * 16 + lid; i < cols; i += MV_LS) s += CONV(row[i]) * x[i];            \
    mv_finish(red, s, lid, r, y, acc);                                                     \
}

#define ID(v) (v)
MV_FLOAT(f32, float, ID, ID)
MV_FLOAT(f16, ushort, h2f16, h2f)
MV_FLOAT(bf16, ushort, bf2f16, bf2f)

/* Element-wise expansions (any column count). */
kernel void dq_f16(global const uchar *W, ulong woff, int cols, global float *out)
{
    size_t i = get_global_id(0);
    out[i] = h2f(((global const ushort *)(W + woff))[i]);
}

kernel void dq_bf16(global const uchar *W, ulong woff, int cols, global float *out)
{
    size_t i = get_global_id(0);
    out[i] = bf2f(((global const ushort *)(W + woff))[i]);
}
