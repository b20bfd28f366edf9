/* gpu/quant_avx512: the kernels of gpu/quant_kern.h compiled for AVX-512 (BW/VL/DQ: 32
 * vector registers, EVEX forms), twice: with vpdpbusd (AVX512-VNNI) for the 8-bit dot
 * products of Q8_0/Q4_0, and without, for AVX-512 CPUs that lack VNNI. */
#define KERN_VNNI 1
#define KERN(name) name##_vnni
#include "gpu/quant_kern.h"
#undef KERN_VNNI
#undef KERN

#define KERN_VNNI 0
#define KERN(name) name##_novnni
#include "gpu/quant_kern.h"

/* Prompt batches, Q8_0: four activations per pass over a weight row, so the row's loads,
 * sign flips and scale conversions are shared (the compiler merges the identical loads of
 * the four inlined q8_0_blk2 calls). Each (row, activation) accumulates in exactly the
 * order of q8_0_row, so results equal the matrix-vector kernel's bit for bit. */
static void mm_q8_0_vnni(const uint8_t *W, size_t rb, size_t n, const uint8_t *act, size_t as,
                         size_t na, float *Y, size_t ldy, size_t nr)
{
    size_t nb = n / 32, off = qa8x2_offset(n), j = 0;
    for (; j + 4 <= na; j += 4) {
        const uint8_t *p = act + j * as;
        const struct qa8 *a0 = (const void *)p, *a1 = (const void *)(p + as),
                         *a3 = (const void *)(p + 3 * as), *a2 = (const void *)(p + 2 * as);
        const struct qa8x2 *x0 = (const void *)(p + off), *x1 = (const void *)(p + as + off),
                           *x2 = (const void *)(p + 2 * as + off), *x3 = (const void *)(p + 3 * as + off);
        for (size_t r = 0; r < nr; r++) {
            const struct blk_q8_0 *b = (const struct blk_q8_0 *)(W + r * rb);
            __m512 z00 = _mm512_setzero_ps(), z01 = z00, z10 = z00, z11 = z00, z20 = z00, z21 = z00,
                   z30 = z00, z31 = z00;
            size_t i = 0;
            for (; i + 4 <= nb; i += 4) {
                size_t h = i / 2;
                z00 = q8_0_blk2_vnni(b + i, x0 + h, z00);
                z10 = q8_0_blk2_vnni(b + i, x1 + h, z10);
                z20 = q8_0_blk2_vnni(b + i, x2 + h, z20);
                z30 = q8_0_blk2_vnni(b + i, x3 + h, z30);
                z01 = q8_0_blk2_vnni(b + i + 2, x0 + h + 1, z01);
                z11 = q8_0_blk2_vnni(b + i + 2, x1 + h + 1, z11);
                z21 = q8_0_blk2_vnni(b + i + 2, x2 + h + 1, z21);
                z31 = q8_0_blk2_vnni(b + i + 2, x3 + h + 1, z31);
            }
            __m512 zs[4][2] = {{z00, z01}, {z10, z11}, {z20, z21}, {z30, z31}};
            const struct qa8 *as8[4] = {a0, a1, a2, a3};
            for (int k = 0; k < 4; k++) {   /* the tail of q8_0_row, per activation */
                float s = _mm512_reduce_add_ps(_mm512_add_ps(zs[k][0], zs[k][1]));
                __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
                for (size_t t = i; t < nb; t++) acc0 = q8_0_blk_vnni(b + t, as8[k] + t, acc0);
                Y[(j + k) * ldy + r] = s + kern_hsum(_mm256_add_ps(acc0, acc1));
            }
        }
    }
    for (; j < na; j++) mv_q8_0_vnni(W, rb, n, act + j * as, Y + j * ldy, nr);
}

void qt_kernels_avx512(struct qt_level_fns *f, int vnni)
{
    if (vnni) f->mm[QK_Q8_0] = mm_q8_0_vnni;
    if (vnni) fill_vnni(f->mv);
    else fill_novnni(f->mv);
    f->act[0] = act_q8;
    f->act[1] = act_q8k;
    fill_dq(f->dq);
}
