/* A small deterministic generator (xorshift32) for the unit tests: the same
 * sequence on every machine, so a failing seed can be replayed anywhere. */
#ifndef TORSIEVE_TEST_RNG_H
#define TORSIEVE_TEST_RNG_H

#include <stdint.h>

static uint32_t rng_state;

static inline uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

#endif
