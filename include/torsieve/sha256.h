/* SHA-256 (FIPS 180-4), for the digests of reassembled streams. */
#ifndef TORSIEVE_SHA256_H
#define TORSIEVE_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct ts_sha256 {
	uint32_t h[8];
	uint64_t length; /* bytes */
	uint8_t block[64];
	uint32_t used;
};

void ts_sha256_init(struct ts_sha256 *s);
void ts_sha256_update(struct ts_sha256 *s, const uint8_t *data, size_t len);
/* Writes the digest as 64 lowercase hex digits and a NUL. */
void ts_sha256_hex(struct ts_sha256 *s, char out[65]);

#endif
