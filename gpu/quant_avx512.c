/* gpu/quant_avx512: the kernels of gpu/quant_kern.h compiled for AVX-512 (BW/VL/DQ: 32
 * vector registers, EVEX forms), twice: with vpdpbusd (AVX512-VNNI) for the 8-bit dot
 * products of Q8_0/Q4_0/IQ4_NL, and without, for AVX-512 CPUs that lack VNNI. */
#define KERN_VNNI 1
#define KERN(name) name##_vnni
#include "gpu/quant_kern.h"
#include "gpu/quant_batch.h"
#undef KERN_VNNI
#undef KERN

#define KERN_VNNI 0
#define KERN(name) name##_novnni
#include "gpu/quant_kern.h"
#include "gpu/quant_batch.h"

/* Prompt batches, Q8_0, Q4_0 and IQ4_NL: four activations per pass over two weight rows,
 * so the weights' loads, unpacking and scale conversions are shared by the four and each
 * activation load by the two rows (the compiler merges the identical loads of the inlined
 * pair kernels). The prepared activation takes 4.25 bytes per element,
 * so four of them fit L1 only for short rows: the columns go in spans of MM_Q8_QUADS·128
 * and the accumulators of up to MM_Q8_ROWS rows are kept between spans. Each (row,
 * activation) still accumulates in exactly the order of its row kernel, so results equal the
 * matrix-vector kernel's bit for bit. */
#define MM_Q8_QUADS 16   /* 2048 columns: 4 activations' spans are 24 KiB */
#define MM_Q8_ROWS 32
enum { MM32_Q8, MM32_Q4, MM32_IQ4 };
#define BLK2(b, x, z) (type == MM32_Q8 ? q8_0_blk2_vnni((const struct blk_q8_0 *)(b), x, z) \
                       : nib_blk2_vnni((const struct blk_q4_0 *)(b), (const struct blk_q4_0 *)(b) + 1, x, z, type == MM32_IQ4, 0xFFFF))
/* Blocks i0..i1 (a multiple of four) of RR (1 or 2) rows rb bytes apart against four
 * activations, accumulators resumed from and left in st; IQ4_NL keeps one chain per
 * activation (iq4_nl_from's order), the others two (the row kernel's z0 and z1). */
static inline __attribute__((always_inline)) void mm32_span(const uint8_t *W, size_t rb, int RR,
                                                            const struct qa8x2 *const x[4], size_t i0, size_t i1,
                                                            __m512 (*st)[8], int type)
{
    const size_t bs = type == MM32_Q8 ? sizeof(struct blk_q8_0) : sizeof(struct blk_q4_0);
    const int o = type == MM32_IQ4 ? 0 : 1;
    __m512 z[2][8];
    _Pragma("GCC unroll 2")
    for (int r = 0; r < RR; r++)
        _Pragma("GCC unroll 8")
        for (int k = 0; k < 8; k++) z[r][k] = st[r][k];
    for (size_t i = i0; i < i1; i += 4) {
        size_t h = i / 2;
        _Pragma("GCC unroll 2")
        for (int t = 0; t < 2; t++)
            _Pragma("GCC unroll 2")
            for (int r = 0; r < RR; r++)
                _Pragma("GCC unroll 4")
                for (int k = 0; k < 4; k++)
                    z[r][2 * k + o * t] = BLK2(W + r * rb + (i + 2 * t) * bs, x[k] + h + t, z[r][2 * k + o * t]);
    }
    _Pragma("GCC unroll 2")
    for (int r = 0; r < RR; r++)
        _Pragma("GCC unroll 8")
        for (int k = 0; k < 8; k++) st[r][k] = z[r][k];
}

static inline __attribute__((always_inline)) void mm_row32_vnni(const uint8_t *W, size_t rb, size_t n,
                                                                const uint8_t *act, size_t as, size_t na,
                                                                float *Y, size_t ldy, size_t nr, int type)
{
#define BLK(b, x, z) (type == MM32_Q4 ? q4_0_blk_vnni((const struct blk_q4_0 *)(b), x, z) : q8_0_blk_vnni((const struct blk_q8_0 *)(b), x, z))
    const size_t bs = type == MM32_Q8 ? sizeof(struct blk_q8_0) : sizeof(struct blk_q4_0);
    size_t nb = n / 32, nq = nb / 4, off = qa8x2_offset(n), j = 0;
    __m512 st[MM_Q8_ROWS][8];
    for (; j + 4 <= na; j += 4) {
        const uint8_t *p = act + j * as;
        const struct qa8x2 *x[4];
        for (int k = 0; k < 4; k++) x[k] = (const void *)(p + k * as + off);
        for (size_t rr = 0; rr < nr; rr += MM_Q8_ROWS) {
            size_t R = nr - rr < MM_Q8_ROWS ? nr - rr : MM_Q8_ROWS;
            for (size_t r = 0; r < R; r++)
                for (int k = 0; k < 8; k++) st[r][k] = _mm512_setzero_ps();
            for (size_t q0 = 0; q0 < nq; q0 += MM_Q8_QUADS) {
                size_t q1 = nq - q0 < MM_Q8_QUADS ? nq : q0 + MM_Q8_QUADS;
                size_t r = 0;
                for (; r + 2 <= R; r += 2)   /* two rows share each activation load */
                    mm32_span(W + (rr + r) * rb, rb, 2, x, 4 * q0, 4 * q1, st + r, type);
                for (; r < R; r++) mm32_span(W + (rr + r) * rb, rb, 1, x, 4 * q0, 4 * q1, st + r, type);
            }
            for (size_t r = 0; r < R; r++) {   /* the end of the row kernel, per activation */
                const uint8_t *b = W + (rr + r) * rb;
                for (int k = 0; k < 4; k++) {
                    if (type == MM32_IQ4) {
                        Y[(j + k) * ldy + rr + r] = iq4_nl_sum_vnni(iq4_nl_from_vnni(b, x[k], 4 * nq, nb, st[r][2 * k], 0));
                        continue;
                    }
                    const struct qa8 *a = (const struct qa8 *)(p + (size_t)k * as);
                    float s = _mm512_reduce_add_ps(_mm512_add_ps(st[r][2 * k], st[r][2 * k + 1]));
                    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
                    for (size_t t = 4 * nq; t < nb; t++) acc0 = BLK(b + t * bs, a + t, acc0);
                    Y[(j + k) * ldy + rr + r] = s + kern_hsum(_mm256_add_ps(acc0, acc1));
                }
            }
        }
    }
    for (; j < na; j++)
        (type == MM32_Q4 ? mv_q4_0_vnni : type == MM32_Q8 ? mv_q8_0_vnni : mv_iq4_nl_zmm_vnni)(W, rb, n, act + j * as, Y + j * ldy, nr);
#undef BLK2
#undef BLK
}

MM_OF(mm_q8_0_vnni, mm_row32_vnni, MM32_Q8)
MM_OF(mm_q4_0_vnni, mm_row32_vnni, MM32_Q4)
MM_OF(mm_iq4_nl_vnni, mm_row32_vnni, MM32_IQ4)

/* Prompt batches, Q4_K/Q5_K: q45_k_row_zmm for A (8 or 4) activations at once. The weight
 * side (nibble unpacking, the 6-bit scales and mins, the scale shuffles) is done once per
 * super-block for all A; each activation's sums are formed in exactly q45_k_row_zmm's
 * order (the integer sums are exact however they are formed: with VNNI, vpdpwssd fuses each
 * scale multiply with its add), so results equal the matrix-vector kernel's bit for bit.
 * Eight activations keep 8 zmm and 8 ymm accumulators live, 24 of the 32 vector registers
 * with the unpacked weights, and halve the per-activation share of the weight work.
 * An activation takes ~352 bytes of cache per super-block, so eight fit L1 only for short
 * rows: the columns go in spans of MM_K_SPAN super-blocks, rows in blocks of MM_K_ROWS
 * whose accumulators are kept between spans (the order of the float operations is
 * unchanged by the split). */
#define MM_K_FIVE 1   /* flags of the K-quant batch kernels */
#define MM_K_VNNI 2
#define MM_K_SPAN 8   /* super-blocks: 8 activations' spans are ~22 KiB */
#define MM_K_ROWS 32

/* Accumulators of one weight row against A activations. */
struct mm_k_acc {
    __m512 acc[8];
    __m256 accm[8];
};

static inline __attribute__((always_inline)) void q45_k_span(const uint8_t *W, size_t i0, size_t i1,
                                                             const uint8_t *act, size_t as, size_t n, int flags,
                                                             int A, struct mm_k_acc *st)
{
    const int five = flags & MM_K_FIVE, vnni = flags & MM_K_VNNI;
    const uint8_t *xz0 = act + qa8k_perm_offset(n);
    __m512 acc[8];
    __m256 accm[8];
    _Pragma("GCC unroll 8")
    for (int k = 0; k < A; k++) {
        acc[k] = i0 ? st->acc[k] : _mm512_setzero_ps();   /* the first span starts at zero */
        accm[k] = i0 ? st->accm[k] : _mm256_setzero_ps();
    }
    const __m512i m4 = _mm512_set1_epi8(0x0F), m16 = _mm512_set1_epi8(0x10);
    for (size_t i = i0; i < i1; i++) {
        struct k45_head hd = k45_head(W, i, five, 0);
        const uint8_t *qs = hd.qs;
        __m256i mn16 = hd.mn16;
        /* the weight scales broadcast once; each activation's d·d_x is then one multiply
         * with d_x broadcast from memory (the same product as the scalar one) */
        const __m512 dw = _mm512_set1_ps(hd.d);
        const __m256 dmw = _mm256_set1_ps(hd.dmin);
        __m512i sc16 = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(hd.sc8));
        __m512i qh = k45_qh_zmm(hd.blk, five);
        __m512i lo[2], hi[2], sc[4];
        _Pragma("GCC unroll 2")
        for (int h = 0; h < 2; h++) {
            __m512i q = _mm512_loadu_si512(qs + 64 * h);
            lo[h] = _mm512_and_si512(q, m4);
            hi[h] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
            if (five) {
                lo[h] = _mm512_or_si512(lo[h], _mm512_and_si512(_mm512_slli_epi16(qh, 4), m16));
                hi[h] = _mm512_or_si512(hi[h], _mm512_and_si512(_mm512_slli_epi16(qh, 3), m16));
                qh = _mm512_srli_epi16(qh, 4);
            }
        }
        _Pragma("GCC unroll 4")
        for (int c = 0; c < 4; c++) sc[c] = _mm512_shuffle_epi8(sc16, _mm512_loadu_si512(k45_sel[c]));
        _Pragma("GCC unroll 8")
        for (int k = 0; k < A; k++) {
            const struct qa8k *ak = (const struct qa8k *)(act + k * as) + i;
            const int8_t *x = (const int8_t *)(xz0 + k * as) + 256 * i;
            __m256i prodm = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)ak->bsums), mn16);
            __m512i sumi = _mm512_setzero_si512();
            _Pragma("GCC unroll 2")
            for (int h = 0; h < 2; h++) {
                __m512i p0 = _mm512_maddubs_epi16(lo[h], _mm512_loadu_si512(x + 128 * h));
                __m512i p1 = _mm512_maddubs_epi16(hi[h], _mm512_loadu_si512(x + 128 * h + 64));
                if (vnni) {
                    sumi = _mm512_dpwssd_epi32(sumi, p0, sc[2 * h]);
                    sumi = _mm512_dpwssd_epi32(sumi, p1, sc[2 * h + 1]);
                } else {
                    sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p0, sc[2 * h]));
                    sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p1, sc[2 * h + 1]));
                }
            }
            __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(ak->d));
            __m256 dmin = _mm256_mul_ps(dmw, _mm256_set1_ps(ak->d));
            acc[k] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sumi), acc[k]);
            accm[k] = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(prodm), accm[k]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int k = 0; k < A; k++) {
        st->acc[k] = acc[k];
        st->accm[k] = accm[k];
    }
}

/* A batch kernel over groups of A activations from a span kernel: rows in blocks of
 * MM_K_ROWS, each block walking the columns span by span (the span from column 0 starts
 * its accumulators at zero, later ones resume them from st). */
typedef void (*mm_k_span_fn)(const uint8_t *W, size_t i0, size_t i1, const uint8_t *act, size_t as, size_t n,
                             struct mm_k_acc *st);
static inline __attribute__((always_inline)) size_t mm_k_groups(const uint8_t *W, size_t rb, size_t n,
                                                                const uint8_t *act, size_t as, size_t na,
                                                                float *Y, size_t ldy, size_t nr, int A,
                                                                mm_k_span_fn span, int mins)
{
    size_t nsb = n / 256, j = 0;
    struct mm_k_acc st[MM_K_ROWS];
    for (; j + A <= na; j += A) {
        const uint8_t *aj = act + j * as;
        for (size_t rr = 0; rr < nr; rr += MM_K_ROWS) {
            size_t R = nr - rr < MM_K_ROWS ? nr - rr : MM_K_ROWS;
            for (size_t i0 = 0; i0 < nsb; i0 += MM_K_SPAN) {
                size_t i1 = nsb - i0 < MM_K_SPAN ? nsb : i0 + MM_K_SPAN;
                for (size_t r = 0; r < R; r++) span(W + (rr + r) * rb, i0, i1, aj, as, n, &st[r]);
            }
            for (size_t r = 0; r < R; r++)   /* the end of the row kernel, per activation */
                for (int k = 0; k < A; k++) {
                    float s = _mm512_reduce_add_ps(st[r].acc[k]);
                    Y[(j + k) * ldy + rr + r] = mins ? s - kern_hsum(st[r].accm[k]) : s;
                }
        }
    }
    return j;
}

#define Q45_SPAN(NAME, FLAGS, A)                                                                          \
    static void NAME(const uint8_t *W, size_t i0, size_t i1, const uint8_t *act, size_t as, size_t n,     \
                     struct mm_k_acc *st)                                                                 \
    {                                                                                                     \
        q45_k_span(W, i0, i1, act, as, n, FLAGS, A, st);                                                  \
    }
Q45_SPAN(q4_k_span8_vnni, MM_K_VNNI, 8)
Q45_SPAN(q4_k_span4_vnni, MM_K_VNNI, 4)
Q45_SPAN(q5_k_span8_vnni, MM_K_VNNI | MM_K_FIVE, 8)
Q45_SPAN(q5_k_span4_vnni, MM_K_VNNI | MM_K_FIVE, 4)
Q45_SPAN(q4_k_span8_novnni, 0, 8)
Q45_SPAN(q4_k_span4_novnni, 0, 4)
Q45_SPAN(q5_k_span8_novnni, MM_K_FIVE, 8)
Q45_SPAN(q5_k_span4_novnni, MM_K_FIVE, 4)
#undef Q45_SPAN

static inline __attribute__((always_inline)) void mm_q45_k(const uint8_t *W, size_t rb, size_t n,
                                                           const uint8_t *act, size_t as, size_t na,
                                                           float *Y, size_t ldy, size_t nr, int flags)
{
    const int five = flags & MM_K_FIVE, vnni = flags & MM_K_VNNI;
    mm_k_span_fn s8 = vnni ? (five ? q5_k_span8_vnni : q4_k_span8_vnni) : (five ? q5_k_span8_novnni : q4_k_span8_novnni);
    mm_k_span_fn s4 = vnni ? (five ? q5_k_span4_vnni : q4_k_span4_vnni) : (five ? q5_k_span4_novnni : q4_k_span4_novnni);
    size_t j = mm_k_groups(W, rb, n, act, as, na, Y, ldy, nr, 8, s8, 1);
    j += mm_k_groups(W, rb, n, act + j * as, as, na - j, Y + j * ldy, ldy, nr, 4, s4, 1);
    for (; j < na; j++) (five ? mv_q5_k : mv_q4_k)(W, rb, n, act + j * as, Y + j * ldy, nr);
}

MM_OF(mm_q4_k_vnni, mm_q45_k, MM_K_VNNI)
MM_OF(mm_q5_k_vnni, mm_q45_k, MM_K_VNNI | MM_K_FIVE)
MM_OF(mm_q4_k_novnni, mm_q45_k, 0)
MM_OF(mm_q5_k_novnni, mm_q45_k, MM_K_FIVE)

/* Prompt batches, Q6_K: q6_k_row_zmm for A (8 or 4) activations at once, driven like
 * Q4_K's (mm_k_groups: spans of columns, blocks of rows). The weight side (the 6-bit quants
 * of both halves and the per-group scale vectors) is unpacked once per super-block for all
 * A; each activation's sums are formed in exactly q6_k_row_zmm's order (integer sums exact,
 * vpdpwssd with VNNI), so results equal the matrix-vector kernel's bit for bit. */
static inline __attribute__((always_inline)) void q6_k_span(const uint8_t *W, size_t i0, size_t i1,
                                                            const uint8_t *act, size_t as, int vnni, int A,
                                                            struct mm_k_acc *st)
{
    __m512 acc[8];
    _Pragma("GCC unroll 8")
    for (int k = 0; k < A; k++) acc[k] = i0 ? st->acc[k] : _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
#define G8(g) g, g, g, g, g, g, g, g
    static const int16_t sel[2][32] = {{G8(0), G8(1), G8(2), G8(3)}, {G8(4), G8(5), G8(6), G8(7)}};
#undef G8
    const __m512i sel0 = _mm512_loadu_si512(sel[0]), sel1 = _mm512_loadu_si512(sel[1]);
    for (size_t i = i0; i < i1; i++) {
        const struct blk_q6_k *b = (const struct blk_q6_k *)W + i;
        __m128i sc8 = _mm_loadu_si128((const __m128i *)b->scales);
        __m256i sc16all = _mm256_cvtepi8_epi16(sc8);
        __m512i lo[2], hi[2], s0[2], s1[2];
        _Pragma("GCC unroll 2")
        for (int h = 0; h < 2; h++) {
            __m512i sc16 = _mm512_broadcast_i64x4(_mm256_cvtepi8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8));
            q6_half_zmm(b, h, m4, m30, &lo[h], &hi[h]);
            s0[h] = _mm512_permutexvar_epi16(sel0, sc16);
            s1[h] = _mm512_permutexvar_epi16(sel1, sc16);
        }
        const __m512 dw = _mm512_set1_ps(kern_h2f(b->d));   /* as in q45_k_span */
        _Pragma("GCC unroll 8")
        for (int k = 0; k < A; k++) {
            const struct qa8k *ak = (const struct qa8k *)(act + k * as) + i;
            __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)ak->bsums), sc16all);
            __m512i sumi = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5)));
            _Pragma("GCC unroll 2")
            for (int h = 0; h < 2; h++) {
                __m512i p0 = _mm512_maddubs_epi16(lo[h], _mm512_loadu_si512(ak->q + 128 * h));
                __m512i p1 = _mm512_maddubs_epi16(hi[h], _mm512_loadu_si512(ak->q + 128 * h + 64));
                if (vnni) {
                    sumi = _mm512_dpwssd_epi32(sumi, p0, s0[h]);
                    sumi = _mm512_dpwssd_epi32(sumi, p1, s1[h]);
                } else {
                    sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p0, s0[h]));
                    sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p1, s1[h]));
                }
            }
            acc[k] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(ak->d)), _mm512_cvtepi32_ps(sumi), acc[k]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int k = 0; k < A; k++) st->acc[k] = acc[k];
}

#define Q6_SPAN(NAME, VNNI, A)                                                                            \
    static void NAME(const uint8_t *W, size_t i0, size_t i1, const uint8_t *act, size_t as, size_t n,     \
                     struct mm_k_acc *st)                                                                 \
    {                                                                                                     \
        (void)n;                                                                                          \
        q6_k_span(W, i0, i1, act, as, VNNI, A, st);                                                       \
    }
Q6_SPAN(q6_k_span8_vnni, 1, 8)
Q6_SPAN(q6_k_span4_vnni, 1, 4)
Q6_SPAN(q6_k_span8_novnni, 0, 8)
Q6_SPAN(q6_k_span4_novnni, 0, 4)
#undef Q6_SPAN

static inline __attribute__((always_inline)) void mm_q6_k(const uint8_t *W, size_t rb, size_t n,
                                                          const uint8_t *act, size_t as, size_t na, float *Y,
                                                          size_t ldy, size_t nr, int vnni)
{
    size_t j = mm_k_groups(W, rb, n, act, as, na, Y, ldy, nr, 8, vnni ? q6_k_span8_vnni : q6_k_span8_novnni, 0);
    j += mm_k_groups(W, rb, n, act + j * as, as, na - j, Y + j * ldy, ldy, nr, 4,
                     vnni ? q6_k_span4_vnni : q6_k_span4_novnni, 0);
    for (; j < na; j++) mv_q6_k(W, rb, n, act + j * as, Y + j * ldy, nr);
}

MM_OF(mm_q6_k_vnni, mm_q6_k, 1)
MM_OF(mm_q6_k_novnni, mm_q6_k, 0)

void qt_kernels_avx512(struct qt_level_fns *f, int vnni)
{
    f->mm[QK_Q4_K] = vnni ? mm_q4_k_vnni : mm_q4_k_novnni;
    f->mm[QK_Q5_K] = vnni ? mm_q5_k_vnni : mm_q5_k_novnni;
    f->mm[QK_Q6_K] = vnni ? mm_q6_k_vnni : mm_q6_k_novnni;
    fill_mm_common(f->mm);
    if (vnni) {
        f->mm[QK_Q8_0] = mm_q8_0_vnni;
        f->mm[QK_Q4_0] = mm_q4_0_vnni;
        f->mm[QK_IQ4_NL] = mm_iq4_nl_vnni;
    } else {
        fill_mm_novnni(f->mm);
    }
    if (vnni) fill_vnni(f->mv);
    else fill_novnni(f->mv);
    f->act[0] = act_q8;
    f->act[1] = act_q8k;
    fill_dq(f->dq);
}
