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

void qt_kernels_avx512(struct qt_level_fns *f, int vnni)
{
    if (vnni) fill_vnni(f->mv);
    else fill_novnni(f->mv);
    f->act[0] = act_q8;
    f->act[1] = act_q8k;
    fill_dq(f->dq);
}
