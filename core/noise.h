/* core/noise: the sanitizer's randomness, sampled exactly.
 *
 * Every draw comes from libsodium: randombytes_buf (the OS CSPRNG) in normal use, or,
 * for tests only, a ChaCha20 keystream keyed by a 64-bit seed (deterministic, NOT private).
 * Noise distributions are sampled with integer arithmetic only (Canonne, Kamath, Steinke
 * 2020, "The Discrete Gaussian for Differential Privacy", Algorithms 1-2): Bernoulli(exp(-n/d))
 * by the alternating-series trick, geometric and discrete Laplace from it. No floating-point
 * inverse CDF is ever used (Mironov 2012 shows how that leaks). The state (the key, the
 * counter and the unread randomness) lives in a guarded region of its own (core/enclave
 * scratch: memfd_secret where the kernel has it), wiped on close. */
#ifndef CMIF_CORE_NOISE_H
#define CMIF_CORE_NOISE_H

#include <stddef.h>
#include <stdint.h>

struct noise;
struct enclave_where;

/* seeded = 0: OS CSPRNG. seeded = 1: deterministic ChaCha20 stream from seed (tests only). */
int noise_open(struct noise **out, int seeded, uint64_t seed, char *err, size_t errlen);
void noise_close(struct noise *n);
int noise_seeded(const struct noise *n);
/* Adds the state's region to w (for the core's report of what is where). */
void noise_where(const struct noise *n, struct enclave_where *w);

uint64_t noise_u64(struct noise *n);
/* Uniform on {0, .., bound-1}, bound >= 1, without modulo bias. */
uint64_t noise_uniform(struct noise *n, uint64_t bound);
/* Bernoulli(num/den), 0 <= num <= den, den >= 1. */
int noise_bernoulli(struct noise *n, uint64_t num, uint64_t den);
/* Bernoulli(exp(-num/den)), num >= 0, den >= 1, exactly. */
int noise_bernoulli_exp(struct noise *n, uint64_t num, uint64_t den);
/* One-sided geometric: P(Y = y) proportional to exp(-y * den / num), y >= 0, i.e. the
 * discrete analogue of an exponential with scale num/den. num, den >= 1. */
int64_t noise_geometric(struct noise *n, uint64_t num, uint64_t den);
/* Discrete Laplace: P(Y = y) proportional to exp(-|y| * den / num), scale num/den. */
int64_t noise_dlaplace(struct noise *n, uint64_t num, uint64_t den);
/* A double uniform in [0, 1) with 53 random bits (only for the baselines' float sampling). */
double noise_unit(struct noise *n);

#endif
