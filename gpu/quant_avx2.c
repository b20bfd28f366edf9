/* gpu/quant_avx2: AVX2/FMA/F16C matrix-vector kernels (compiled with AVX2_FLAGS); the kernel
 * bodies live in gpu/quant_kern.h, shared with the AVX-512 build. */
#define KERN_VNNI 0
#define KERN(name) name##_avx2
#include "gpu/quant_kern.h"
#include "gpu/quant_batch.h"

void qt_kernels_avx2(struct qt_level_fns *f)
{
    KERN(fill)(f->mv);
    f->act[0] = act_q8;
    f->act[1] = act_q8k;
    fill_dq(f->dq);
    KERN(fill_mm)(f->mm);
    fill_mm_k256(f->mm);
    fill_mm_common(f->mm);
}
