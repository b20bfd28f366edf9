/* The rest of a Llama layer: RMSNorm, RoPE (adjacent pairs) with the KV-cache store,
 * causal GQA attention over the cached keys/values, and SwiGLU. Buffers hold n rows
 * (tokens) of activations; the KV cache of one layer is ctx rows of n_kv*head_dim. */

/* y[g] = x[row0 + g] / rms * w, one work-group per row. */
kernel void rmsnorm(global const float *x, int row0, global const float *w, global float *y,
                    int dim, float eps)
{
    local float red[NORM_LS];
    int g = get_group_id(0), lid = get_local_id(0);
    global const float *xr = x + (size_t)(row0 + g) * dim;
    float s = 0.0f;
    for (int i = lid; i < dim; i += NORM_LS) s += xr[i] * xr[i];
    s = wg_sum(red, s, lid, NORM_LS);
    float inv = 1.0f / sqrt(s / (float)dim + eps);
    global float *yr = y + (size_t)g * dim;
    for (int i = lid; i < dim; i += NORM_LS) yr[i] = xr[i] * inv * w[i];
}

/* Rotates q in place and k into the cache, copies v into the cache.
 * global size: (max(nh, nkv) * hd/2, n). inv_freq: per-pair frequencies (host-computed,
 * Llama 3.1 factors already applied). */
kernel void rope_kv(global float *q, global const float *k, global const float *v,
                    global float *kc, global float *vc, int nh, int nkv, int hd, int pos0,
                    global const float *inv_freq)
{
    int gp = get_global_id(0), i = get_global_id(1);
    int half_hd = hd / 2;
    int h = gp / half_hd, p = gp % half_hd;
    int pos = pos0 + i;
    float th = (float)pos * inv_freq[p];
    float c = cos(th), s = sin(th);
    if (h < nh) {
        global float *qq = q + (size_t)i * nh * hd + h * hd + 2 * p;
        float a = qq[0], b = qq[1];
        qq[0] = a * c - b * s;
        qq[1] = a * s + b * c;
    }
    if (h < nkv) {
        size_t kvd = (size_t)nkv * hd;
        global const float *kk = k + (size_t)i * kvd + h * hd + 2 * p;
        global const float *vv = v + (size_t)i * kvd + h * hd + 2 * p;
        global float *ko = kc + (size_t)pos * kvd + h * hd + 2 * p;
        global float *vo = vc + (size_t)pos * kvd + h * hd + 2 * p;
        float a = kk[0], b = kk[1];
        ko[0] = a * c - b * s;
        ko[1] = a * s + b * c;
        vo[0] = vv[0];
        vo[1] = vv[1];
    }
}

/* Context shift, one pass: rows s0.. of ks/vs go to rows d0.. of kc/vc, each key pair rotated
 * by `delta` positions (RoPE composes, so that is the key for its new position up to
 * rounding; delta 0 copies exactly). global size: (nkv * hd/2, rows). */
kernel void kv_shift(global const float *ks, global const float *vs, global float *kc,
                     global float *vc, int nkv, int hd, int s0, int d0, int delta,
                     global const float *inv_freq)
{
    int gp = get_global_id(0), i = get_global_id(1);
    int half_hd = hd / 2;
    int h = gp / half_hd, p = gp % half_hd;
    size_t kvd = (size_t)nkv * hd, col = (size_t)h * hd + 2 * p;
    size_t src = (size_t)(s0 + i) * kvd + col, dst = (size_t)(d0 + i) * kvd + col;
    float th = (float)delta * inv_freq[p];
    float c = cos(th), s = sin(th);
    float a = ks[src], b = ks[src + 1];
    kc[dst] = a * c - b * s;
    kc[dst + 1] = a * s + b * c;
    vc[dst] = vs[src];
    vc[dst + 1] = vs[src + 1];
}

/* One work-group per (head, token): scores over cached positions 0..pos0+i, softmax,
 * weighted sum of values. Tokens i0 .. i0+groups(1)-1 of the chunk; sc is scratch of
 * groups(1)*nh rows of ctx floats (the host bounds how many tokens share it). */
kernel void attention(global const float *q, global const float *kc, global const float *vc,
                      global float *out, global float *sc, int nh, int nkv, int hd, int pos0,
                      int ctx, int i0)
{
    local float red[ATT_LS];
    int h = get_group_id(0), gi = get_group_id(1), lid = get_local_id(0);
    int i = i0 + gi;
    int last = pos0 + i;
    int kh = h / (nh / nkv);
    size_t kvd = (size_t)nkv * hd;
    global const float *qq = q + (size_t)i * nh * hd + h * hd;
    global float *s = sc + ((size_t)gi * nh + h) * ctx;
    float scale = 1.0f / sqrt((float)hd);
    float mx = -INFINITY;
    for (int t = lid; t <= last; t += ATT_LS) {
        global const float *kk = kc + (size_t)t * kvd + kh * hd;
        float d = 0.0f;
        for (int j = 0; j < hd; j++) d += qq[j] * kk[j];
        d *= scale;
        s[t] = d;
        mx = fmax(mx, d);
    }
    mx = wg_max(red, mx, lid, ATT_LS);
    float sum = 0.0f;
    for (int t = lid; t <= last; t += ATT_LS) {
        float e = exp(s[t] - mx);
        s[t] = e;
        sum += e;
    }
    sum = wg_sum(red, sum, lid, ATT_LS);
    barrier(CLK_GLOBAL_MEM_FENCE);
    float inv = 1.0f / sum;
    global float *o = out + (size_t)i * nh * hd + h * hd;
    for (int j = lid; j < hd; j += ATT_LS) {
        float a = 0.0f;
        for (int t = 0; t <= last; t++) a += s[t] * vc[(size_t)t * kvd + kh * hd + j];
        o[j] = a * inv;
    }
}

/* g = silu(g) * u */
kernel void swiglu(global float *g, global const float *u)
{
    size_t i = get_global_id(0);
    float a = g[i];
    g[i] = a / (1.0f + exp(-a)) * u[i];
}
