/* gpu/quant_avx512: AVX-512 (BW/VL/DQ, optional VNNI) matrix-vector kernels. */
#include <immintrin.h>

#include "gpu/quant_impl.h"

void qt_kernels_avx512(qt_mv_fn k[QK_NSLOTS], int vnni)
{
    (void)k;
    (void)vnni;
}
