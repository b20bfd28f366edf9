/* tests/tools/testrng: the tiny reproducible generator that tests and benchmarks use for
 * their own data (random matrices, texts, token ids, byte flips). Marsaglia's xorshift64:
 * fast and short, nothing more is needed there. The engine's generator, which the sampler,
 * the trainer and randmodel share, is gpu/rng. Header-only and free of cmocka, so the
 * benchmark program can use it too. */
#ifndef CMIF_TESTS_TESTRNG_H
#define CMIF_TESTS_TESTRNG_H

#include <stdint.h>

/* The next value of the stream *s (which must not be 0). */
static inline uint64_t testrng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Uniform in [-1, 1). */
static inline float testrng_frand(uint64_t *s)
{
    return (float)((testrng_next(s) >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

#endif
