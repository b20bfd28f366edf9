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

/* A span's accumulators for A activations: the row's sums so far, zero at its first span. */
#define MM_K_ACC_LOAD(ST, I0, A, ACC, ACCM)                                                   \
    _Pragma("GCC unroll 8") for (int k_ = 0; k_ < (A); k_++)                                 \
    {                                                                                         \
        (ACC)[k_] = (I0) ? (ST)->acc[k_] : _mm512_setzero_ps();                               \
        (ACCM)[k_] = (I0) ? (ST)->accm[k_] : _mm256_setzero_ps();                             \
    }

static inline __attribute__((always_inline)) void q45_k_span(const uint8_t *W, size_t i0, size_t i1,
                                                             const uint8_t *act, size_t as, size_t n, int flags,
                                                             int A, struct mm_k_acc *st)
{
    const int five = flags & MM_K_FIVE, vnni = flags & MM_K_VNNI;
    const uint8_t *xz0 = act + qa8k_perm_offset(n);
    __m512 acc[8];
    __m256 accm[8];
    MM_K_ACC_LOAD(st, i0, A, acc, accm);
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

/* ---- Q2_K, Q3_K, IQ4_XS: 512-bit matrix-vector and batch kernels ----
 * One span kernel per format does a super-block's weight side once (quants unpacked to
 * bytes in element order, the group scales widened and spread to the int16 lanes of the
 * products) and then, for each of A activations, the integer sums (vpdpwssd with VNNI)
 * and one float multiply-add. The matrix-vector kernel is the same function with A = 1 over
 * the whole row (plus prefetching), and the batch kernels drive A = 8 and 4 through
 * mm_k_groups, so every (row, activation) accumulates in the same order: the batch results
 * equal the matrix-vector kernel's bit for bit. */
#define MM_K3 4   /* Q3_K (else Q2_K) */
#define MM_K_PF 8 /* prefetch ahead (the matrix-vector kernels) */

/* int16 lane i of the product of elements 64c.. of a super-block belongs to 16-element
 * group 4c + i/8 (k23_gsel); Q2_K/Q3_K quant bits 2j of a byte of qs (j = 2jj + t, t the
 * 256-bit half) come down by a 16-bit shift of 4jj + 2t (k23_qcnt); Q3_K's third bit
 * (bit 4h + j of hmask) goes to bit 2 by a 32-bit rotate of 4h + j - 2 (k23_hcnt, c = 2h + jj);
 * IQ4_XS's 32-element sub-blocks 2z, 2z+1 fill the halves of product z (iq4_xs_sel). */
#define G8(g) g, g, g, g, g, g, g, g
#define G16(g) G8(g), G8(g)
static const int16_t k23_gsel[4][32] = {{G8(0), G8(1), G8(2), G8(3)}, {G8(4), G8(5), G8(6), G8(7)},
                                        {G8(8), G8(9), G8(10), G8(11)}, {G8(12), G8(13), G8(14), G8(15)}};
static const int16_t k23_qcnt[2][32] = {{G16(0), G16(2)}, {G16(4), G16(6)}};
static const int16_t iq4_xs_sel[4][32] = {{G16(0), G16(1)}, {G16(2), G16(3)}, {G16(4), G16(5)}, {G16(6), G16(7)}};
#undef G16
#undef G8
static const int32_t k23_hcnt[4][16] = {
    {30, 30, 30, 30, 30, 30, 30, 30, 31, 31, 31, 31, 31, 31, 31, 31},
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
};

/* The integer sum of one activation against a super-block's four unpacked 64-element
 * weight vectors v (unsigned) with their scale vectors s, added to sumi. */
static inline __attribute__((always_inline)) __m512i k23_dot4(__m512i sumi, const __m512i v[4], const __m512i s[4],
                                                              const int8_t *x, int vnni)
{
    _Pragma("GCC unroll 4")
    for (int c = 0; c < 4; c++) {
        __m512i p = _mm512_maddubs_epi16(v[c], _mm512_loadu_si512(x + 64 * c));
        sumi = vnni ? _mm512_dpwssd_epi32(sumi, p, s[c]) : _mm512_add_epi32(sumi, _mm512_madd_epi16(p, s[c]));
    }
    return sumi;
}

static inline __attribute__((always_inline)) void k23_span(const uint8_t *W, size_t i0, size_t i1, const uint8_t *act,
                                                           size_t as, int flags, int A, struct mm_k_acc *st)
{
    const int three = flags & MM_K3, vnni = flags & MM_K_VNNI;
    const size_t bs = three ? sizeof(struct blk_q3_k) : sizeof(struct blk_q2_k);
    __m512 acc[8];
    __m256 accm[8];
    MM_K_ACC_LOAD(st, i0, A, acc, accm);
    const __m512i m3 = _mm512_set1_epi8(3), m4 = _mm512_set1_epi8(4);
    for (size_t i = i0; i < i1; i++) {
        const uint8_t *blk = W + i * bs, *qs;
        if (flags & MM_K_PF) {
            _mm_prefetch((const char *)blk + PF_AHEAD, PF_HINT);
            _mm_prefetch((const char *)blk + PF_AHEAD + 64, PF_HINT);
        }
        __m256i sc16, mn16 = _mm256_setzero_si256();
        __m512i hm = _mm512_setzero_si512();
        float d, dmin = 0;
        if (three) {
            const struct blk_q3_k *b = (const struct blk_q3_k *)blk;
            sc16 = _mm256_cvtepi8_epi16(k23_q3_scales(b->scales));
            hm = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b->hmask));
            qs = b->qs;
            d = kern_h2f(b->d);
        } else {
            const struct blk_q2_k *b = (const struct blk_q2_k *)blk;
            __m128i raw = _mm_loadu_si128((const __m128i *)b->scales), l4 = _mm_set1_epi8(0x0F);
            sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(raw, l4));
            mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), l4));
            qs = b->qs;
            d = kern_h2f(b->d);
            dmin = kern_h2f(b->dmin);
        }
        __m512i v[4], s[4];
        _Pragma("GCC unroll 4")
        for (int c = 0; c < 4; c++) {
            __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qs + 32 * (c / 2))));
            q = _mm512_srlv_epi16(q, _mm512_loadu_si512(k23_qcnt[c % 2]));
            if (three) {
                __m512i hb = _mm512_and_si512(_mm512_rorv_epi32(hm, _mm512_loadu_si512(k23_hcnt[c])), m4);
                v[c] = _mm512_ternarylogic_epi64(q, m3, hb, 0xEA);   /* (q & 3) | hb */
            } else {
                v[c] = _mm512_and_si512(q, m3);
            }
            s[c] = _mm512_permutexvar_epi16(_mm512_loadu_si512(k23_gsel[c]), _mm512_castsi256_si512(sc16));
        }
        const __m512 dw = _mm512_set1_ps(d);
        const __m256 dmw = _mm256_set1_ps(dmin);
        _Pragma("GCC unroll 8")
        for (int k = 0; k < A; k++) {
            const struct qa8k *ak = (const struct qa8k *)(act + k * as) + i;
            __m256i bsums = _mm256_loadu_si256((const __m256i *)ak->bsums);
            __m512i sumi = _mm512_setzero_si512();
            if (three)   /* stored +4 (clear high bit means -4): -4·Σ_g sc_g·Σx_g */
                sumi = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(),
                                                               _mm256_slli_epi32(_mm256_madd_epi16(bsums, sc16), 2)));
            else
                accm[k] = _mm256_fmadd_ps(_mm256_mul_ps(dmw, _mm256_set1_ps(ak->d)),
                                          _mm256_cvtepi32_ps(_mm256_madd_epi16(bsums, mn16)), accm[k]);
            sumi = k23_dot4(sumi, v, s, ak->q, vnni);
            acc[k] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(ak->d)), _mm512_cvtepi32_ps(sumi), acc[k]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int k = 0; k < A; k++) {
        st->acc[k] = acc[k];
        st->accm[k] = accm[k];
    }
}

/* IQ4_XS: 64 bytes of indices (four 32-element sub-blocks) looked up to signed weights,
 * the low and high nibble halves interleaved back into element order; maddubs takes |w|
 * and x with w's sign (a masked negation per activation). */
static inline __attribute__((always_inline)) void iq4_xs_span(const uint8_t *W, size_t i0, size_t i1,
                                                              const uint8_t *act, size_t as, int flags, int A,
                                                              struct mm_k_acc *st)
{
    const int vnni = flags & MM_K_VNNI;
    __m512 acc[8];
    _Pragma("GCC unroll 8")
    for (int k = 0; k < A; k++) acc[k] = i0 ? st->acc[k] : _mm512_setzero_ps();
    const __m512i kabs = _mm512_abs_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)qt_iq4nl_values)));
    const __m512i m4 = _mm512_set1_epi8(0x0F), m8 = _mm512_set1_epi8(8), ilo = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0),
                  ihi = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
    for (size_t i = i0; i < i1; i++) {
        const struct blk_iq4_xs *b = (const struct blk_iq4_xs *)W + i;
        if (flags & MM_K_PF) {
            _Pragma("GCC unroll 3")
            for (int k = 0; k < 3; k++) _mm_prefetch((const char *)b + PF_AHEAD + 64 * k, PF_HINT);
        }
        uint32_t sl;
        memcpy(&sl, b->scales_l, 4);
        __m256i lo = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)sl), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                                      _mm256_set1_epi32(0x0F));
        __m256i hi = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(b->scales_h), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
                                      _mm256_set1_epi32(3));
        __m512i sc = _mm512_castsi128_si512(
            _mm256_cvtepi32_epi16(_mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32))));
        __m512i aw[4], s[4];
        __mmask64 neg[4];
        _Pragma("GCC unroll 2")
        for (int c = 0; c < 2; c++) {
            __m512i q = _mm512_loadu_si512(b->qs + 64 * c);
            __m512i il = _mm512_and_si512(q, m4), ih = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
            __m512i i0 = _mm512_permutex2var_epi64(il, ilo, ih), i1 = _mm512_permutex2var_epi64(il, ihi, ih);
            neg[2 * c] = _mm512_testn_epi8_mask(i0, m8);   /* indices 0..7 are the negative values */
            neg[2 * c + 1] = _mm512_testn_epi8_mask(i1, m8);
            aw[2 * c] = _mm512_shuffle_epi8(kabs, i0);
            aw[2 * c + 1] = _mm512_shuffle_epi8(kabs, i1);
        }
        _Pragma("GCC unroll 4")
        for (int z = 0; z < 4; z++) s[z] = _mm512_permutexvar_epi16(_mm512_loadu_si512(iq4_xs_sel[z]), sc);
        const __m512 dw = _mm512_set1_ps(kern_h2f(b->d));
        _Pragma("GCC unroll 8")
        for (int k = 0; k < A; k++) {
            const struct qa8k *ak = (const struct qa8k *)(act + k * as) + i;
            __m512i sumi = _mm512_setzero_si512();
            _Pragma("GCC unroll 4")
            for (int z = 0; z < 4; z++) {
                __m512i x = _mm512_loadu_si512(ak->q + 64 * z);
                x = _mm512_mask_sub_epi8(x, neg[z], _mm512_setzero_si512(), x);
                __m512i p = _mm512_maddubs_epi16(aw[z], x);
                sumi = vnni ? _mm512_dpwssd_epi32(sumi, p, s[z]) : _mm512_add_epi32(sumi, _mm512_madd_epi16(p, s[z]));
            }
            acc[k] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(ak->d)), _mm512_cvtepi32_ps(sumi), acc[k]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int k = 0; k < A; k++) st->acc[k] = acc[k];
}

/* Span kernels (type, VNNI, A) and their matrix-vector kernels (A = 1 with prefetching,
 * finished as mm_k_groups finishes: Q2_K's mins subtracted last). */
#define K23_SPAN(NAME, BODY, FLAGS, A)                                                                    \
    static void NAME(const uint8_t *W, size_t i0, size_t i1, const uint8_t *act, size_t as, size_t n,     \
                     struct mm_k_acc *st)                                                                 \
    {                                                                                                     \
        (void)n;                                                                                          \
        BODY(W, i0, i1, act, as, FLAGS, A, st);                                                           \
    }
#define K23_MV(NAME, BODY, FLAGS, MINS)                                                                   \
    static void NAME(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)        \
    {                                                                                                     \
        for (size_t r = 0; r < nr; r++) {                                                                 \
            struct mm_k_acc st;                                                                           \
            BODY(W + r * rb, 0, n / 256, act, 0, (FLAGS) | MM_K_PF, 1, &st);                              \
            float s = _mm512_reduce_add_ps(st.acc[0]);                                                    \
            y[r] = MINS ? s - kern_hsum(st.accm[0]) : s;                                                  \
        }                                                                                                 \
    }
/* The batch kernel: groups of 8 activations, then of 4, the rest one by one. */
static inline __attribute__((always_inline)) void mm_k_84(const uint8_t *W, size_t rb, size_t n, const uint8_t *act,
                                                          size_t as, size_t na, float *Y, size_t ldy, size_t nr,
                                                          mm_k_span_fn s8, mm_k_span_fn s4, qt_mv_fn mv, int mins)
{
    size_t j = mm_k_groups(W, rb, n, act, as, na, Y, ldy, nr, 8, s8, mins);
    j += mm_k_groups(W, rb, n, act + j * as, as, na - j, Y + j * ldy, ldy, nr, 4, s4, mins);
    for (; j < na; j++) mv(W, rb, n, act + j * as, Y + j * ldy, nr);
}
#define K23_MM(NAME, S8, S4, MV, MINS)                                                                    \
    static void NAME(const uint8_t *W, size_t rb, size_t n, const uint8_t *act, size_t as, size_t na,     \
                     float *Y, size_t ldy, size_t nr)                                                     \
    {                                                                                                     \
        mm_k_84(W, rb, n, act, as, na, Y, ldy, nr, S8, S4, MV, MINS);                                     \
    }
#define K23_TYPE(T, BODY, FLAGS, MINS)                                                                    \
    K23_SPAN(T##_span8_vnni, BODY, (FLAGS) | MM_K_VNNI, 8)                                                \
    K23_SPAN(T##_span4_vnni, BODY, (FLAGS) | MM_K_VNNI, 4)                                                \
    K23_SPAN(T##_span8_novnni, BODY, FLAGS, 8)                                                            \
    K23_SPAN(T##_span4_novnni, BODY, FLAGS, 4)                                                            \
    K23_MV(mv_##T##_zmm_vnni, BODY, (FLAGS) | MM_K_VNNI, MINS)                                            \
    K23_MV(mv_##T##_zmm_novnni, BODY, FLAGS, MINS)                                                        \
    K23_MM(mm_##T##_zmm_vnni, T##_span8_vnni, T##_span4_vnni, mv_##T##_zmm_vnni, MINS)                    \
    K23_MM(mm_##T##_zmm_novnni, T##_span8_novnni, T##_span4_novnni, mv_##T##_zmm_novnni, MINS)
K23_TYPE(q2_k, k23_span, 0, 1)
K23_TYPE(q3_k, k23_span, MM_K3, 0)
K23_TYPE(iq4_xs, iq4_xs_span, 0, 0)
#undef K23_TYPE
#undef K23_MM
#undef K23_MV
#undef K23_SPAN

/* Q4_1, Q5_0 and Q5_1 at 512 bits: two 32-blocks per register against the qa8x4 entries
 * (quant_impl.h), four blocks a step. The weight side of a step (nibbles, Q5's fifth bits
 * as a byte mask, the four blocks' [d m] fp16 pairs converted in one instruction and
 * spread to the lanes of each pair's products) is shared by A activations; each
 * activation then costs per pair one vpdpbusd (the sum starts at Q5_0's -16·Σq), a
 * conversion and an FMA, plus one FMA per step for the Q4_1/Q5_1 mins. The matrix-vector
 * kernel is the same code with A = 1, so prompt and decode results agree bit for bit;
 * mm_k_groups drives the batches (a "super-block" here is two steps, 256 columns). Rows
 * whose length is not a multiple of 256 keep the 256-bit q5_row kernels. */
/* vpshufb patterns: for the byte of each element of pair p (Q4_0's nibble order), the
 * byte of the four blocks' qh words (blocks 2p and 2p + 1) that holds its fifth bit. */
#define B8(j) j, j, j, j, j, j, j, j
#define PICK(p) B8(8 * p), B8(8 * p + 1), B8(8 * p + 4), B8(8 * p + 5), B8(8 * p + 2), B8(8 * p + 3), B8(8 * p + 6), B8(8 * p + 7)
static const int8_t q51_pick[2][64] = {{PICK(0)}, {PICK(1)}};
#undef PICK
#undef B8

static inline __attribute__((always_inline)) void q51_span(const uint8_t *W, size_t i0, size_t i1,
                                                           const uint8_t *act, size_t as, size_t n, int type,
                                                           int vnni, int A, int prefetch, struct mm_k_acc *st)
{
    const int hasm = type != QT_Q5_0, five = type != QT_Q4_1;
    const size_t bs = type == QT_Q4_1 ? sizeof(struct blk_q4_1)
                      : type == QT_Q5_0 ? sizeof(struct blk_q5_0) : sizeof(struct blk_q5_1);
    const uint8_t *xs = act + qa8x2_offset(n);
    __m512 acc[8];
    __m256 accm[8];
    MM_K_ACC_LOAD(st, i0, A, acc, accm);
    const __m512i m4 = _mm512_set1_epi8(0x0F), m16 = _mm512_set1_epi8(0x10), ones = _mm512_set1_epi16(1);
    const __m512i bits = _mm512_set1_epi64(0x8040201008040201ll);
    const __m512i sel0 = _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 2, 2);
    const __m512i sel1 = _mm512_add_epi32(sel0, _mm512_set1_epi32(4));
    for (size_t s = 2 * i0; s < 2 * i1; s++) {
        const uint8_t *b = W + 4 * s * bs;
        if (prefetch) {
            _mm_prefetch((const char *)b + PF_AHEAD_Q8, PF_HINT);
            _mm_prefetch((const char *)b + PF_AHEAD_Q8 + 64, PF_HINT);
        }
        /* dm: [d0 m0 d1 m1 d2 m2 d3 m3] as fp16 (Q5_0: d and two bytes of qh); qh: the
         * four blocks' fifth bits (Q5_1 loads both from one 8-byte read per block) */
        __m128i dm, qh = _mm_setzero_si128();
        if (type == QT_Q5_1) {
            uint64_t v[4];
            _Pragma("GCC unroll 4")
            for (int k = 0; k < 4; k++) memcpy(&v[k], b + k * bs, 8);
            __m128 v01 = _mm_castsi128_ps(_mm_set_epi64x((long long)v[1], (long long)v[0]));
            __m128 v23 = _mm_castsi128_ps(_mm_set_epi64x((long long)v[3], (long long)v[2]));
            dm = _mm_castps_si128(_mm_shuffle_ps(v01, v23, 0x88));
            qh = _mm_castps_si128(_mm_shuffle_ps(v01, v23, 0xDD));
        } else {
            uint32_t v[4], h[4];
            _Pragma("GCC unroll 4")
            for (int k = 0; k < 4; k++) {
                memcpy(&v[k], b + k * bs, 4);
                if (five) memcpy(&h[k], b + k * bs + 2, 4);
            }
            dm = _mm_setr_epi32((int)v[0], (int)v[1], (int)v[2], (int)v[3]);
            if (five) qh = _mm_setr_epi32((int)h[0], (int)h[1], (int)h[2], (int)h[3]);
        }
        const __m256 dmf = _mm256_cvtph_ps(dm);
        const __m512i qh4 = _mm512_broadcast_i32x4(qh);
        __m512i w[2];
        __m512 sw[2];
        _Pragma("GCC unroll 2")
        for (int p = 0; p < 2; p++) {
            const uint8_t *qs = b + 2 * p * bs + (hasm ? 4 : 2) + (five ? 4 : 0);
            __m256i t = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(qs + bs)), _mm_loadu_si128((const __m128i *)qs));
            w[p] = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(t), _mm256_srli_epi16(t, 4), 1), m4);
            if (five) {   /* each byte picks the qh byte of its element and tests its bit */
                __m512i pick = _mm512_shuffle_epi8(qh4, _mm512_loadu_si512(q51_pick[p]));
                w[p] = _mm512_mask_add_epi8(w[p], _mm512_test_epi8_mask(pick, bits), w[p], m16);
            }
            sw[p] = _mm512_permutexvar_ps(p ? sel1 : sel0, _mm512_castps256_ps512(dmf));
        }
        _Pragma("GCC unroll 8")
        for (int k = 0; k < A; k++) {
            const struct qa8x4 *x = (const struct qa8x4 *)(xs + k * as) + s;
            _Pragma("GCC unroll 2")
            for (int p = 0; p < 2; p++) {
                __m512i dot = type == QT_Q5_0 ? _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(x->c.bias + 8 * p)))
                                              : _mm512_setzero_si512();
                __m512i xq = _mm512_loadu_si512(x->q + 64 * p);
                if (vnni) dot = _mm512_dpbusd_epi32(dot, w[p], xq);
                else dot = _mm512_add_epi32(dot, _mm512_madd_epi16(_mm512_maddubs_epi16(w[p], xq), ones));
                __m512 sc = _mm512_mul_ps(sw[p], _mm512_loadu_ps(x->d + 16 * p));
                acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, acc[k]);
            }
            if (hasm) accm[k] = _mm256_fnmadd_ps(dmf, _mm256_loadu_ps(x->c.ms), accm[k]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int k = 0; k < A; k++) {
        st->acc[k] = acc[k];
        st->accm[k] = accm[k];
    }
}

/* The span kernels (A = 8, 4) and the matrix-vector kernel of one type and VNNI setting;
 * OLD_MV and OLD_MM are the 256-bit kernels for rows of other lengths. */
#define Q51_KERNELS(T, TYPE, V, SUF, OLD_MV, OLD_MM)                                                       \
    static void T##_span8##SUF(const uint8_t *W, size_t i0, size_t i1, const uint8_t *act, size_t as,      \
                               size_t n, struct mm_k_acc *st)                                              \
    {                                                                                                      \
        q51_span(W, i0, i1, act, as, n, TYPE, V, 8, 0, st);                                                \
    }                                                                                                      \
    static void T##_span4##SUF(const uint8_t *W, size_t i0, size_t i1, const uint8_t *act, size_t as,      \
                               size_t n, struct mm_k_acc *st)                                              \
    {                                                                                                      \
        q51_span(W, i0, i1, act, as, n, TYPE, V, 4, 0, st);                                                \
    }                                                                                                      \
    static void mv_##T##_zmm##SUF(const uint8_t *W, size_t rb, size_t n, const void *act, float *y,       \
                                  size_t nr)                                                               \
    {                                                                                                      \
        if (n % 256) {                                                                                     \
            OLD_MV(W, rb, n, act, y, nr);                                                                  \
            return;                                                                                        \
        }                                                                                                  \
        for (size_t r = 0; r < nr; r++) {                                                                  \
            struct mm_k_acc st;                                                                            \
            q51_span(W + r * rb, 0, n / 256, act, 0, n, TYPE, V, 1, 1, &st);                               \
            float s = _mm512_reduce_add_ps(st.acc[0]);                                                     \
            y[r] = TYPE != QT_Q5_0 ? s - kern_hsum(st.accm[0]) : s;                                        \
        }                                                                                                  \
    }                                                                                                      \
    static void mm_##T##_zmm##SUF(const uint8_t *W, size_t rb, size_t n, const uint8_t *act, size_t as,   \
                                  size_t na, float *Y, size_t ldy, size_t nr)                              \
    {                                                                                                      \
        if (n % 256) {                                                                                     \
            OLD_MM(W, rb, n, act, as, na, Y, ldy, nr);                                                     \
            return;                                                                                        \
        }                                                                                                  \
        size_t j = mm_k_groups(W, rb, n, act, as, na, Y, ldy, nr, 8, T##_span8##SUF, TYPE != QT_Q5_0);     \
        j += mm_k_groups(W, rb, n, act + j * as, as, na - j, Y + j * ldy, ldy, nr, 4, T##_span4##SUF,       \
                         TYPE != QT_Q5_0);                                                                 \
        for (; j < na; j++) mv_##T##_zmm##SUF(W, rb, n, act + j * as, Y + j * ldy, nr);                    \
    }
Q51_KERNELS(q4_1, QT_Q4_1, 1, _vnni, mv_q4_1, mm_q4_1)
Q51_KERNELS(q5_0, QT_Q5_0, 1, _vnni, mv_q5_0, mm_q5_0)
Q51_KERNELS(q5_1, QT_Q5_1, 1, _vnni, mv_q5_1, mm_q5_1)
Q51_KERNELS(q4_1, QT_Q4_1, 0, _novnni, mv_q4_1, mm_q4_1)
Q51_KERNELS(q5_0, QT_Q5_0, 0, _novnni, mv_q5_0, mm_q5_0)
Q51_KERNELS(q5_1, QT_Q5_1, 0, _novnni, mv_q5_1, mm_q5_1)
#undef Q51_KERNELS

/* The 512-bit Q2_K, Q3_K, IQ4_XS, Q4_1, Q5_0 and Q5_1 kernels in place of the 256-bit ones. */
#define ZMM_FILL(SLOT, T)                                                                       \
    f->mv[SLOT] = vnni ? mv_##T##_zmm_vnni : mv_##T##_zmm_novnni;                                \
    f->mm[SLOT] = vnni ? mm_##T##_zmm_vnni : mm_##T##_zmm_novnni;
static void zmm_fill(struct qt_level_fns *f, int vnni)
{
    ZMM_FILL(QK_Q2_K, q2_k)
    ZMM_FILL(QK_Q3_K, q3_k)
    ZMM_FILL(QK_IQ4_XS, iq4_xs)
    ZMM_FILL(QK_Q4_1, q4_1)
    ZMM_FILL(QK_Q5_0, q5_0)
    ZMM_FILL(QK_Q5_1, q5_1)
}
#undef ZMM_FILL

/* ---- packed Q4_0 / IQ4_NL / Q8_0 (quant_impl.h's groups of 16 interleaved rows) ---------- */

/* Decode over a packed Q4_0 / IQ4_NL / Q8_0 group touches one line per KiB or so (per pair of
 * Q8_0 blocks, per two pairs of Q4_0 / IQ4_NL ones) this far ahead; groups follow each other
 * in memory, so past a group's end is the next one's start. A sparse touch well ahead keeps
 * the hardware prefetcher streaming across page boundaries. Measured on one 1.1 GB matrix
 * against a plain streaming read, one and two threads (AMD EPYC, AVX-512): Q8_0 read
 * 0.72-0.79 of it when every line was prefetched three pairs ahead, 0.75-0.89 with no
 * prefetch, 0.99-1.14 with one line per pair 8 to 32 pairs ahead; Q4_0 / IQ4_NL 0.77-0.99
 * with none, 1.13-1.18 this way. IQ4_XS and Q4_K, with more work per byte, did worse with
 * sparse touches than with their own (none, and every line three super-blocks ahead). */
#ifndef PF_AHEAD_X16
#define PF_AHEAD_X16 16384
#endif

/* One group of 16 rows against A activations: per block the weights' four chunks are loaded
 * and unpacked once (IQ4_NL through its table stored +128; Q8_0's eight chunks, stored +128,
 * are taken as they are), then per activation an int32 sum
 * starts at its bias, takes eight vpdpbusd against the activation's words broadcast, is
 * converted once and added by one FMA, times the 16 rows' scales by the activation's, into
 * the rows' lanes. The integer sums are exact however they are split (two chains when few
 * activations leave the latency exposed), and blocks go in order in every lane, so any A
 * gives the same floats: batch equals decode bit for bit, and mv_x16 in quant.c too. */
static inline __attribute__((always_inline)) void x16_group(const uint8_t *G, size_t nb, const uint8_t *const *act,
                                                            const int32_t *const *bias, int A, __m512 *acc,
                                                            int kind)
{
    const int iq4 = kind == 1, q8 = kind == 3;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i tbl = m4;
    if (iq4) {
        uint8_t t[16];
        for (int j = 0; j < 16; j++) t[j] = (uint8_t)(qt_iq4nl_values[j] + 128);
        tbl = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)t));
    }
    _Pragma("GCC unroll 8")
    for (int k = 0; k < A; k++) acc[k] = _mm512_setzero_ps();
    for (size_t i = 0; i < nb; i++) {
        const uint8_t *q = G + (q8 ? x16q8_quants_off(i, nb) : x16_quants_off(i, nb));
        const uint8_t *sc = G + (q8 ? x16q8_scales_off(i) : x16_scales_off(i));
        if (A == 1 && !(i & (q8 ? 1 : 3))) _mm_prefetch((const char *)sc + PF_AHEAD_X16, PF_HINT);
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)sc));
        __m512i w[8];
        if (q8)
            _Pragma("GCC unroll 8")
            for (int c = 0; c < 8; c++) w[c] = _mm512_loadu_si512(q + 64 * c);
        else
        _Pragma("GCC unroll 4")
        for (int c = 0; c < 4; c++) {
            __m512i v = _mm512_loadu_si512(q + 64 * c);
            w[c] = _mm512_and_si512(v, m4);
            w[c + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            if (iq4) {
                w[c] = _mm512_shuffle_epi8(tbl, w[c]);
                w[c + 4] = _mm512_shuffle_epi8(tbl, w[c + 4]);
            }
        }
        _Pragma("GCC unroll 8")
        for (int k = 0; k < A; k++) {
            const struct qa8 *x = (const struct qa8 *)act[k] + i;
            __m512i s0 = _mm512_set1_epi32(bias[k][i]), s1 = _mm512_setzero_si512();
            _Pragma("GCC unroll 8")
            for (int u = 0; u < 8; u++) {   /* the words broadcast straight from memory */
                __m512i xw = _mm512_broadcastd_epi32(_mm_loadu_si32(x->q + 4 * u));
                if (A <= 2 && u >= 4) s1 = _mm512_dpbusd_epi32(s1, w[u], xw);
                else s0 = _mm512_dpbusd_epi32(s0, w[u], xw);
            }
            if (A <= 2) s0 = _mm512_add_epi32(s0, s1);
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_mul_ps(dw, _mm512_set1_ps(x->d)), acc[k]);
        }
    }
}

static inline __attribute__((always_inline)) void mv_x16_vnni(const uint8_t *W, size_t rb, size_t n, const void *act,
                                                               float *y, size_t nr, int kind)
{
    size_t nb = n / 32, full = nr & ~(size_t)15;
    const uint8_t *a[1] = {act};
    const int32_t *bias[1] = {(const int32_t *)((const uint8_t *)act + x16_bias_offset(kind == 1, n))};
    for (size_t g = 0; g < full; g += 16) {
        __m512 acc[1];
        x16_group(W + g * rb, nb, a, bias, 1, acc, kind);
        _mm512_storeu_ps(y + g, acc[0]);
    }
    if (nr > full)
        (kind == 3 ? mv_q8_0_vnni : kind ? mv_iq4_nl_zmm_vnni : mv_q4_0_vnni)(W + full * rb, rb, n, act, y + full,
                                                                            nr - full);
}

static inline __attribute__((always_inline)) void xs16_group(const uint8_t *G, size_t nsb, const uint8_t *const *act,
                                                             const int32_t *const *bias, int A, __m512 *acc);

/* Prompt batches: eight activations per pass over a group (then four, then one), the unpacked
 * weights in 8 registers shared by all, 8 accumulators. kind: 0 Q4_0, 1 IQ4_NL, 2 IQ4_XS
 * (its groups are xs16_group's), 3 Q8_0. */
#define X16_A 8
static inline __attribute__((always_inline)) void mm_x16_vnni(const uint8_t *W, size_t rb, size_t n,
                                                               const uint8_t *act, size_t as, size_t na,
                                                               float *Y, size_t ldy, size_t nr, int kind)
{
    size_t nb = n / 32, full = nr & ~(size_t)15, j = 0;
    size_t boff = kind == 2 ? xs16_bias_offset(n) : x16_bias_offset(kind == 1, n);
    const uint8_t *a[X16_A];
    const int32_t *bias[X16_A];
#define X16_RUN(A)                                                                     \
    for (; j + (A) <= na; j += (A)) {                                                  \
        for (int k = 0; k < (A); k++) {                                                \
            a[k] = act + (j + (size_t)k) * as;                                         \
            bias[k] = (const int32_t *)(a[k] + boff);                                  \
        }                                                                              \
        for (size_t g = 0; g < full; g += 16) {                                        \
            __m512 acc[A];                                                             \
            if (kind == 2) xs16_group(W + g * rb, n / 256, a, bias, (A), acc);         \
            else x16_group(W + g * rb, nb, a, bias, (A), acc, kind);                   \
            for (int k = 0; k < (A); k++) _mm512_storeu_ps(Y + (j + (size_t)k) * ldy + g, acc[k]); \
        }                                                                              \
    }
    X16_RUN(X16_A)
    X16_RUN(4)
    X16_RUN(1)
#undef X16_RUN
    if (nr > full)
        (kind == 3   ? mm_q8_0_vnni
         : kind == 2 ? mm_iq4_xs_zmm_vnni
         : kind      ? mm_iq4_nl_vnni
                     : mm_q4_0_vnni)(W + full * rb, rb, n, act, as, na, Y + full, ldy, nr - full);
}

static void mv_q4_0_x16_vnni(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    mv_x16_vnni(W, rb, n, act, y, nr, 0);
}
static void mv_iq4_nl_x16_vnni(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    mv_x16_vnni(W, rb, n, act, y, nr, 1);
}
MM_OF(mm_q4_0_x16_vnni, mm_x16_vnni, 0)
MM_OF(mm_iq4_nl_x16_vnni, mm_x16_vnni, 1)
static void mv_q8_0_x16_vnni(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    mv_x16_vnni(W, rb, n, act, y, nr, 3);
}
MM_OF(mm_q8_0_x16_vnni, mm_x16_vnni, 3)

/* ---- packed IQ4_XS (quant_impl.h's 16-row super-block groups) ----------------------------- */

/* One group of 16 rows against A activations, per super-block: the 16 rows' d converted and
 * their scale bits loaded once; per sub-block the four chunks unpacked through the table
 * stored +128 and the 16 rows' scales taken out of their bits, both shared by the A
 * activations; then per activation an int32 sum starts at the sub-block's bias, takes eight
 * vpdpbusd against the activation's words broadcast (exact: the sub-block's integer dot in
 * each row's lane), is multiplied by the rows' scales and added to the super-block's sum,
 * which is converted once and added by one FMA times the 16 rows' d by the activation's.
 * Integer sums are exact however they are split, and super-blocks go in order in every
 * lane, so any A gives the same floats: batch equals decode bit for bit, and mv_iq4_xs_x16
 * in quant.c too. */
static inline __attribute__((always_inline)) void xs16_group(const uint8_t *G, size_t nsb, const uint8_t *const *act,
                                                             const int32_t *const *bias, int A, __m512 *acc)
{
    uint8_t t[16];
    for (int j = 0; j < 16; j++) t[j] = (uint8_t)(qt_iq4nl_values[j] + 128);
    const __m512i tbl = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)t)), m4 = _mm512_set1_epi8(0x0F);
    const __m512i lo4 = _mm512_set1_epi32(0x0F), hi2 = _mm512_set1_epi32(0x30), k32 = _mm512_set1_epi32(32);
    _Pragma("GCC unroll 8")
    for (int k = 0; k < A; k++) acc[k] = _mm512_setzero_ps();
    for (size_t i = 0; i < nsb; i++) {
        const uint8_t *S = G + i * XS16_SB, *q = S + XS16_QUANTS;
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)S));
        __m512i sh = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(S + 32))), 4);
        __m512i sl = _mm512_loadu_si512(S + 64);
        __m512i sumi[8];
        _Pragma("GCC unroll 8")
        for (int k = 0; k < A; k++) sumi[k] = _mm512_setzero_si512();
        for (int ib = 0; ib < 8; ib++, q += 256) {
            /* scale bits 4ib.. of scales_l and 2ib.. of scales_h, moved down step by step */
            __m512i ls = _mm512_sub_epi32(_mm512_or_si512(_mm512_and_si512(sl, lo4), _mm512_and_si512(sh, hi2)), k32);
            sl = _mm512_srli_epi32(sl, 4);
            sh = _mm512_srli_epi32(sh, 2);
            __m512i w[8];
            _Pragma("GCC unroll 4")
            for (int c = 0; c < 4; c++) {
                __m512i v = _mm512_loadu_si512(q + 64 * c);
                w[c] = _mm512_shuffle_epi8(tbl, _mm512_and_si512(v, m4));
                w[c + 4] = _mm512_shuffle_epi8(tbl, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
            }
            _Pragma("GCC unroll 8")
            for (int k = 0; k < A; k++) {
                const int8_t *xq = ((const struct qa8k *)act[k] + i)->q + 32 * ib;
                __m512i s0 = _mm512_set1_epi32(bias[k][8 * i + (size_t)ib]), s1 = _mm512_setzero_si512();
                _Pragma("GCC unroll 8")
                for (int u = 0; u < 8; u++) {   /* the words broadcast straight from memory */
                    __m512i xw = _mm512_broadcastd_epi32(_mm_loadu_si32(xq + 4 * u));
                    if (A <= 2 && u >= 4) s1 = _mm512_dpbusd_epi32(s1, w[u], xw);
                    else s0 = _mm512_dpbusd_epi32(s0, w[u], xw);
                }
                if (A <= 2) s0 = _mm512_add_epi32(s0, s1);
                sumi[k] = _mm512_add_epi32(sumi[k], _mm512_mullo_epi32(s0, ls));
            }
        }
        _Pragma("GCC unroll 8")
        for (int k = 0; k < A; k++) {
            const struct qa8k *x = (const struct qa8k *)act[k] + i;
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[k]), _mm512_mul_ps(dw, _mm512_set1_ps(x->d)), acc[k]);
        }
    }
}

/* ---- packed Q4_K (quant_impl.h's groups of 16 interleaved rows) ---------------------- */

/* vpshufb patterns over a vector of four 6-bit values per int32 lane: value b alone in its
 * lane (the scales, for vpmulld), and values 2q and 2q + 1 as the lane's two int16 (the
 * mins, for vpdpwssd against two sub-blocks' sums). */
#define X16K_B(d, b) 4 * (d) + (b), -128, -128, -128
#define X16K_L(b) X16K_B(0, b), X16K_B(1, b), X16K_B(2, b), X16K_B(3, b)
#define X16K_SEL(b) X16K_L(b), X16K_L(b), X16K_L(b), X16K_L(b)
static const int8_t x16k_scsel[4][64] = {{X16K_SEL(0)}, {X16K_SEL(1)}, {X16K_SEL(2)}, {X16K_SEL(3)}};
#undef X16K_SEL
#undef X16K_L
#undef X16K_B
#define X16K_P(d, q) 4 * (d) + 2 * (q), -128, 4 * (d) + 2 * (q) + 1, -128
#define X16K_L(q) X16K_P(0, q), X16K_P(1, q), X16K_P(2, q), X16K_P(3, q)
#define X16K_SEL(q) X16K_L(q), X16K_L(q), X16K_L(q), X16K_L(q)
static const int8_t x16k_mnsel[2][64] = {{X16K_SEL(0)}, {X16K_SEL(1)}};
#undef X16K_SEL
#undef X16K_L
#undef X16K_P

/* Four bytes at p in every int32 lane (an embedded broadcast of the instruction using it). */
static inline __attribute__((always_inline)) __m512i x16k_word(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* Decode over a packed Q4_K group prefetches every line of the super-block three ahead
 * (two to four measured alike; none ran 10-15% below the row kernel at memory bandwidth,
 * one thread, the host loaded by other work); the batch kernel reads its tile from L2. */
#ifndef PF_AHEAD_X16K
#define PF_AHEAD_X16K (3 * X16K_SB)
#endif

/* One group of 16 rows against A activations. Per super-block the 16 rows' scales and mins
 * are unpacked once (k4_unpack's steps on every lane); per activation the mins' term (four
 * vpdpwssd of the rows' paired mins against the activation's sub-block sums) goes into the
 * rows' lanes first, by one FMA with dmin·d_x. Then sub-block by sub-block the weights are
 * loaded once for all A (low nibbles masked in place; high nibbles masked in place too, so
 * they count 16·q, and the low sub-blocks' scales are taken 16·sc to match), and per
 * activation eight vpdpbusd against its words broadcast give the 16 rows' exact sums,
 * multiplied by the rows' scales into an int32 sum per super-block (|16·Σ| < 2^29), which
 * one FMA adds with d·d_x/16. The integer sums are exact however they are split, and the
 * float steps go in the same order in every lane for any A: batch equals decode bit for
 * bit, and mv_q4_k_x16 in quant.c too. */
static inline __attribute__((always_inline)) void x16k_group(const uint8_t *G, size_t i0, size_t i1,
                                                             const uint8_t *const *act, size_t boff, int A,
                                                             float (*acc)[16], int prefetch)
{
    const __m512i m0f = _mm512_set1_epi8(0x0F), mf0 = _mm512_set1_epi8((char)0xF0);
    const __m512i m3f = _mm512_set1_epi8(0x3F), m30 = _mm512_set1_epi8(0x30);
    if (i0 == 0)
        _Pragma("GCC unroll 8")
        for (int k = 0; k < A; k++) _mm512_storeu_ps(acc[k], _mm512_setzero_ps());
    for (size_t i = i0; i < i1; i++) {
        const uint8_t *S = G + i * X16K_SB;
        if (prefetch)
            _Pragma("GCC unroll 4")
            for (int t = 0; t < 4; t++) _mm_prefetch((const char *)S + PF_AHEAD_X16K + 64 * t, PF_HINT);
        const __m512i s0 = _mm512_loadu_si512(S + 64), s1 = _mm512_loadu_si512(S + 128);
        const __m512i s2 = _mm512_loadu_si512(S + 192);
        /* bytes of each lane: the scales 0-3, 4-7 and the mins 0-3, 4-7 (a | (b & c)) */
        const __m512i sclo = _mm512_and_si512(s0, m3f), mnlo = _mm512_and_si512(s1, m3f);
        const __m512i schi = _mm512_ternarylogic_epi32(_mm512_and_si512(s2, m0f), _mm512_srli_epi32(s0, 2), m30, 0xF8);
        const __m512i mnhi = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi32(s2, 4), m0f),
                                                       _mm512_srli_epi32(s1, 2), m30, 0xF8);
        {
            const __m512 dmw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(S + 32)));
            __m512i mp[4];
            _Pragma("GCC unroll 4")
            for (int p = 0; p < 4; p++)
                mp[p] = _mm512_shuffle_epi8(p < 2 ? mnlo : mnhi, _mm512_loadu_si512(x16k_mnsel[p & 1]));
            _Pragma("GCC unroll 8")
            for (int k = 0; k < A; k++) {
                const uint8_t *bs = act[k] + boff + 16 * i;
                __m512i m = _mm512_setzero_si512();
                _Pragma("GCC unroll 4")
                for (int p = 0; p < 4; p++) m = _mm512_dpwssd_epi32(m, mp[p], x16k_word(bs + 4 * p));
                const float dx = ((const struct qa8k *)act[k])[i].d;
                _mm512_storeu_ps(acc[k], _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmw, _mm512_set1_ps(dx)),
                                                          _mm512_loadu_ps(acc[k])));
            }
        }
        __m512i sumi[8];
        _Pragma("GCC unroll 8")
        for (int j = 0; j < 8; j++) {
            const uint8_t *q = S + X16K_QS + 64 * 8 * (j / 2);
            if (prefetch && !(j & 1))
                _Pragma("GCC unroll 8")
                for (int t = 0; t < 8; t++) _mm_prefetch((const char *)q + PF_AHEAD_X16K + 64 * t, PF_HINT);
            __m512i sc = _mm512_shuffle_epi8(j < 4 ? sclo : schi, _mm512_loadu_si512(x16k_scsel[j % 4]));
            if (!(j & 1)) sc = _mm512_slli_epi32(sc, 4);
            __m512i w[8];
            _Pragma("GCC unroll 8")
            for (int u = 0; u < 8; u++) w[u] = _mm512_and_si512(_mm512_loadu_si512(q + 64 * u), j & 1 ? mf0 : m0f);
            _Pragma("GCC unroll 8")
            for (int k = 0; k < A; k++) {
                const int8_t *x = ((const struct qa8k *)act[k])[i].q + 32 * j;
                __m512i t0 = _mm512_setzero_si512(), t1 = _mm512_setzero_si512();
                _Pragma("GCC unroll 8")
                for (int u = 0; u < 8; u++) {
                    if (A <= 2 && u >= 4) t1 = _mm512_dpbusd_epi32(t1, w[u], x16k_word(x + 4 * u));
                    else t0 = _mm512_dpbusd_epi32(t0, w[u], x16k_word(x + 4 * u));
                }
                if (A <= 2) t0 = _mm512_add_epi32(t0, t1);
                t0 = _mm512_mullo_epi32(t0, sc);
                sumi[k] = j ? _mm512_add_epi32(sumi[k], t0) : t0;
            }
        }
        const __m512 dw16 =
            _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)S)), _mm512_set1_ps(0.0625f));
        _Pragma("GCC unroll 8")
        for (int k = 0; k < A; k++) {
            const float dx = ((const struct qa8k *)act[k])[i].d;
            __m512 dd = _mm512_mul_ps(dw16, _mm512_set1_ps(dx));
            _mm512_storeu_ps(acc[k], _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[k]), dd, _mm512_loadu_ps(acc[k])));
        }
    }
}

static void mv_iq4_xs_x16_vnni(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    size_t nsb = n / 256, full = nr & ~(size_t)15;
    const uint8_t *a[1] = {act};
    const int32_t *bias[1] = {(const int32_t *)((const uint8_t *)act + xs16_bias_offset(n))};
    for (size_t g = 0; g < full; g += 16) {
        __m512 acc[1];
        xs16_group(W + g * rb, nsb, a, bias, 1, acc);
        _mm512_storeu_ps(y + g, acc[0]);
    }
    if (nr > full) mv_iq4_xs_zmm_vnni(W + full * rb, rb, n, act, y + full, nr - full);
}

MM_OF(mm_iq4_xs_x16_vnni, mm_x16_vnni, 2)

static void mv_q4_k_x16_vnni(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    size_t nsb = n / 256, full = nr & ~(size_t)15;
    const uint8_t *a[1] = {act};
    for (size_t g = 0; g < full; g += 16) {
        x16k_group(W + g * rb, 0, nsb, a, x16k_bsum_offset(n), 1, (float (*)[16])(y + g), 1);
    }
    if (nr > full) mv_q4_k_dp_vnni(W + full * rb, rb, n, act, y + full, nr - full);
}

/* Prompt batches: eight activations per pass over a group (then four, then one). Eight
 * activations take ~2.3 KiB per super-block, so for long rows the columns go in spans of
 * X16K_SPAN super-blocks that stay in L1 while up to X16K_GROUPS groups pass over them, the
 * groups' sums kept between spans (each lane's float steps keep their order). */
#define X16K_SPAN 8
#define X16K_GROUPS 8
static void mm_q4_k_x16_vnni(const uint8_t *W, size_t rb, size_t n, const uint8_t *act, size_t as, size_t na,
                             float *Y, size_t ldy, size_t nr)
{
    size_t nsb = n / 256, full = nr & ~(size_t)15, boff = x16k_bsum_offset(n), j = 0;
    const uint8_t *a[8];
    float acc[X16K_GROUPS][8][16];
#define X16K_RUN(A)                                                                                   \
    for (; j + (A) <= na; j += (A)) {                                                                 \
        for (int k = 0; k < (A); k++) a[k] = act + (j + (size_t)k) * as;                              \
        for (size_t g0 = 0; g0 < full; g0 += 16 * X16K_GROUPS) {                                      \
            size_t ng = (full - g0) / 16 < X16K_GROUPS ? (full - g0) / 16 : X16K_GROUPS;              \
            for (size_t i0 = 0; i0 < nsb; i0 += X16K_SPAN) {                                          \
                size_t i1 = nsb - i0 < X16K_SPAN ? nsb : i0 + X16K_SPAN;                              \
                for (size_t g = 0; g < ng; g++) x16k_group(W + (g0 + 16 * g) * rb, i0, i1, a, boff, (A), acc[g], 0); \
            }                                                                                         \
            for (size_t g = 0; g < ng; g++)                                                           \
                for (int k = 0; k < (A); k++) memcpy(Y + (j + (size_t)k) * ldy + g0 + 16 * g, acc[g][k], 64); \
        }                                                                                             \
    }
    X16K_RUN(8)
    X16K_RUN(4)
    X16K_RUN(1)
#undef X16K_RUN
    if (nr > full) mm_q4_k_vnni(W + full * rb, rb, n, act, as, na, Y + full, ldy, nr - full);
}

/* qt_tr16_ref in registers: each row's 16 words loaded as one vector (four 16-byte pieces
 * when they are not contiguous), then 32-bit and 64-bit unpacks transpose within 128-bit
 * lanes and two rounds of lane shuffles across them. */
static void tr16_avx512(const uint8_t *src, size_t rb, const size_t o[4], uint8_t *const d[4], int flip)
{
    __m512i r[16], t[16];
    const int contiguous = o[1] == o[0] + 16 && o[2] == o[0] + 32 && o[3] == o[0] + 48;
    for (int i = 0; i < 16; i++) {
        const uint8_t *p = src + (size_t)i * rb;
        if (contiguous) {
            r[i] = _mm512_loadu_si512(p + o[0]);
        } else {
            __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(p + o[0])));
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + o[1])), 1);
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + o[2])), 2);
            r[i] = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + o[3])), 3);
        }
    }
    for (int i = 0; i < 8; i++) {   /* lane L: rows 2i, 2i+1 of words 4L..4L+3, interleaved */
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {   /* r[4i + j], lane L: rows 4i..4i+3 of word 4L + j */
        r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    const __m512i x80 = _mm512_set1_epi8((char)0x80);
    /* Aligned chunks are written around the caches: a packed tensor is read again only
     * when decoding, long after, and the write then costs no read of the line first. */
    const int nt = !(((uintptr_t)d[0] | (uintptr_t)d[1] | (uintptr_t)d[2] | (uintptr_t)d[3]) & 63);
    for (int j = 0; j < 4; j++) {   /* word 4L + j of all rows: lane L of r[j], r[4+j], r[8+j], r[12+j] */
        __m512i u = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x88), v = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xdd);
        __m512i w = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x88), x = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xdd);
        __m512i c[4] = {_mm512_shuffle_i32x4(u, w, 0x88), _mm512_shuffle_i32x4(v, x, 0x88),
                        _mm512_shuffle_i32x4(u, w, 0xdd), _mm512_shuffle_i32x4(v, x, 0xdd)};
        for (int L = 0; L < 4; L++) {   /* c[L] is word 4L + j: chunk 4L + j */
            if (flip) c[L] = _mm512_xor_si512(c[L], x80);
            if (nt) _mm512_stream_si512((void *)(d[L] + 64 * j), c[L]);
            else _mm512_storeu_si512(d[L] + 64 * j, c[L]);
        }
    }
}

void qt_kernels_avx512(struct qt_level_fns *f, int vnni)
{
    f->tr16 = tr16_avx512;
    f->mm[QK_Q4_K] = vnni ? mm_q4_k_vnni : mm_q4_k_novnni;
    f->mm[QK_Q5_K] = vnni ? mm_q5_k_vnni : mm_q5_k_novnni;
    f->mm[QK_Q6_K] = vnni ? mm_q6_k_vnni : mm_q6_k_novnni;
    fill_mm_common(f->mm);
    if (vnni) {
        f->mm[QK_Q8_0] = mm_q8_0_vnni;
        f->mm[QK_Q4_0] = mm_q4_0_vnni;
        f->mm[QK_IQ4_NL] = mm_iq4_nl_vnni;
        f->mm[QK_Q4_0_X16] = mm_q4_0_x16_vnni;
        f->mm[QK_IQ4_NL_X16] = mm_iq4_nl_x16_vnni;
        f->mm[QK_Q4_K_X16] = mm_q4_k_x16_vnni;
        f->mm[QK_Q8_0_X16] = mm_q8_0_x16_vnni;
    } else {
        fill_mm_novnni(f->mm);
    }
    if (vnni) fill_vnni(f->mv);
    else fill_novnni(f->mv);
    if (vnni) {
        f->mv[QK_Q4_0_X16] = mv_q4_0_x16_vnni;
        f->mv[QK_IQ4_NL_X16] = mv_iq4_nl_x16_vnni;
        f->mv[QK_Q4_K_X16] = mv_q4_k_x16_vnni;
        f->mv[QK_Q8_0_X16] = mv_q8_0_x16_vnni;
    }
    if (vnni) {
        f->mv[QK_IQ4_XS_X16] = mv_iq4_xs_x16_vnni;
        f->mm[QK_IQ4_XS_X16] = mm_iq4_xs_x16_vnni;
    }
    f->act[0] = act_q8;
    f->act[1] = act_q8k;
    fill_dq(f->dq);
    zmm_fill(f, vnni);
}
