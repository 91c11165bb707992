/*
 * Layer entry points shared by the decoder's files. Each takes the frame,
 * the offset where its header starts and the end of the bytes the layer
 * below vouches for, and returns the anomaly that stopped decoding (or
 * TS_ANOM_NONE).
 */
#ifndef TORSIEVE_DECODE_INTERNAL_H
#define TORSIEVE_DECODE_INTERNAL_H

#include "torsieve/decode.h"

/* A frame under decode: captured bytes [0, caplen), wire bytes [0, wirelen). */
struct ts_frame {
	const uint8_t *data;
	uint32_t caplen;
	uint32_t wirelen;
};

enum ts_anomaly ts_decode_ipv4(const struct ts_frame *f, uint32_t off, struct ts_decoded *d);
enum ts_anomaly ts_decode_ipv6(const struct ts_frame *f, uint32_t off, struct ts_decoded *d);

/*
 * Decode the transport header at off, whose segment is seg bytes on the wire
 * (the caller has stored both in d too; they are passed so they are not read
 * back from memory just written). first_frag_only says the datagram is the
 * first fragment of a larger one, so lengths that describe the whole
 * datagram (UDP's) can exceed this fragment.
 */
enum ts_anomaly ts_decode_transport(const struct ts_frame *f, struct ts_decoded *d, uint32_t off,
                                    uint32_t seg, bool first_frag_only);

/* The fixed header size of an upper-layer protocol, for the tiny-fragment
 * rules; 0 for protocols without one. */
uint32_t ts_transport_min_header(uint8_t ip_proto);

/* Map an IP protocol number to the transport class. */
enum ts_l4 ts_l4_from_proto(uint8_t ip_proto);

#endif
