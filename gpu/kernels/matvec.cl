/* Fused dequantize + matrix-vector products for single-token decode, and dequantize
 * kernels that expand a tile of rows to F32 for CLBlast SGEMM in prompt batches.
 *
 * mv_*: one work-group of MV_LS work-items per row; adjacent work-items read adjacent
 * blocks (coalesced), each keeps a private partial sum, and the group reduces them in
 * local memory. y[row] = dot(row, x), or y[row] += dot when acc (residual adds). */

#define MV_QUANT(NAME, UNIT, BYTES, UPB)                                                   \
kernel void mv_##NAME(global const uchar *W, ulong woff, int cols, global const float *x,  \
                      global float *y, int acc)                                            \
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
    float s = wg_sum(red, hsum16(s16), lid, MV_LS);                                        \
    if (lid == 0) y[r] = acc ? y[r] + s : s;                                               \
}                                                                                          \
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

MV_QUANT(q4_0, unit_q4_0, 18, 1)
MV_QUANT(q8_0, unit_q8_0, 34, 1)
MV_QUANT(q4_k, unit_q4_k, 144, 8)
MV_QUANT(q5_k, unit_q5_k, 176, 8)
MV_QUANT(q6_k, unit_q6_k, 210, 8)

/* Float rows of any length: 16 elements at a time, then a scalar tail. */
#define MV_FLOAT(NAME, T, LOAD16, CONV)                                                    \
kernel void mv_##NAME(global const uchar *W, ulong woff, int cols, global const float *x,  \
                      global float *y, int acc)                                            \
{                                                                                          \
    local float red[MV_LS];                                                                \
    int r = get_group_id(0), lid = get_local_id(0);                                        \
    global const T *row = (global const T *)(W + woff) + (size_t)r * cols;                 \
    float16 s16 = (float16)(0.0f);                                                         \
    int nv = cols / 16;                                                                    \
    for (int c = lid; c < nv; c += MV_LS) s16 += LOAD16(vload16(c, row)) * vload16(c, x);  \
    float s = hsum16(s16);                                                                 \
    for (int i = nv * 16 + lid; i < cols; i += MV_LS) s += CONV(row[i]) * x[i];            \
    s = wg_sum(red, s, lid, MV_LS);                                                        \
    if (lid == 0) y[r] = acc ? y[r] + s : s;                                               \
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
