/*
 * Byte-order helpers for reading packet fields.
 *
 * Packet bytes sit at arbitrary alignment (a pcap record puts the IP header at
 * offset 14, 18, 16 ...), and MIPS traps on unaligned multi-byte loads, so
 * every multi-byte field is assembled byte by byte. Callers must have checked
 * the bounds before calling.
 */
#ifndef TORSIEVE_BYTES_H
#define TORSIEVE_BYTES_H

#include <stdint.h>

static inline uint16_t ts_be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t ts_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t ts_be64(const uint8_t *p)
{
	/* Spelled out so compilers can merge it into one load and a byte swap
	 * where the target allows unaligned loads (and only there). */
	return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
	       (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
	       (uint64_t)p[6] << 8 | p[7];
}

static inline uint16_t ts_le16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[1] << 8 | p[0]);
}

static inline uint32_t ts_le32(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

#endif
