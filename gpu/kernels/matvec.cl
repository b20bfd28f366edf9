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
    float s = 0.0f;                                                                        \
    for (int u = lid; u < nu; u += MV_LS) {                                                \
        float v[32];                                                                       \
        UNIT(row, u, v);                                                                   \
        global const float *xx = x + 32 * u;                                               \
        float t = 0.0f;                                                                    \
        for (int l = 0; l < 32; l++) t += v[l] * xx[l];                                    \
        s += t;                                                                            \
    }                                                                                      \
    s = wg_sum(red, s, lid, MV_LS);                                                        \
    if (lid == 0) y[r] = acc ? y[r] + s : s;                                               \
}                                                                                          \
kernel void dq_##NAME(global const uchar *W, ulong woff, int cols, global float *out)      \
{                                                                                          \
    size_t gid = get_global_id(0);                                                         \
    int nu = cols / 32;                                                                    \
    size_t r = gid / nu;                                                                   \
    int u = (int)(gid % nu);                                                               \
    size_t rb = (size_t)(cols / (32 * UPB)) * BYTES;                                       \
    float v[32];                                                                           \
    UNIT(W + woff + r * rb, u, v);                                                         \
    global float *o = out + r * (size_t)cols + 32 * u;                                     \
    for (int l = 0; l < 32; l++) o[l] = v[l];                                              \
}

MV_QUANT(q4_0, unit_q4_0, 18, 1)
MV_QUANT(q8_0, unit_q8_0, 34, 1)
MV_QUANT(q4_k, unit_q4_k, 144, 8)
MV_QUANT(q5_k, unit_q5_k, 176, 8)
MV_QUANT(q6_k, unit_q6_k, 210, 8)

kernel void mv_f32(global const uchar *W, ulong woff, int cols, global const float *x,
                   global float *y, int acc)
{
    local float red[MV_LS];
    int r = get_group_id(0), lid = get_local_id(0);
    global const float *row = (global const float *)(W + woff) + (size_t)r * cols;
    float s = 0.0f;
    for (int i = lid; i < cols; i += MV_LS) s += row[i] * x[i];
    s = wg_sum(red, s, lid, MV_LS);
    if (lid == 0) y[r] = acc ? y[r] + s : s;
}

kernel void mv_f16(global const uchar *W, ulong woff, int cols, global const float *x,
                   global float *y, int acc)
{
    local float red[MV_LS];
    int r = get_group_id(0), lid = get_local_id(0);
    global const ushort *row = (global const ushort *)(W + woff) + (size_t)r * cols;
    float s = 0.0f;
    for (int i = lid; i < cols; i += MV_LS) s += h2f(row[i]) * x[i];
    s = wg_sum(red, s, lid, MV_LS);
    if (lid == 0) y[r] = acc ? y[r] + s : s;
}

kernel void mv_bf16(global const uchar *W, ulong woff, int cols, global const float *x,
                    global float *y, int acc)
{
    local float red[MV_LS];
    int r = get_group_id(0), lid = get_local_id(0);
    global const ushort *row = (global const ushort *)(W + woff) + (size_t)r * cols;
    float s = 0.0f;
    for (int i = lid; i < cols; i += MV_LS) s += bf2f(row[i]) * x[i];
    s = wg_sum(red, s, lid, MV_LS);
    if (lid == 0) y[r] = acc ? y[r] + s : s;
}

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
