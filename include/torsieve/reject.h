/*
 * ICMP and ICMPv6 errors for `reject`, sent by torsieve itself.
 *
 * Why not the kernel's REJECT target: the gateway delivers a rejected packet
 * locally (policy routing on its mark) so that INPUT can answer it, and for
 * such a packet the kernel's icmp_send() takes the packet's own destination,
 * an address the gateway does not have, as the error's source; the route
 * lookup then refuses it and nothing is sent (checked on this kernel). A TCP
 * reset does not go through icmp_send(), so REJECT --reject-with tcp-reset
 * keeps working and is used for it.
 *
 * So torsieve builds the error (the original destination as its source, as
 * a router on the path would) and sends it through a raw socket with
 * IP_TRANSPARENT, which allows that source; the packet itself is dropped.
 * Errors are never sent about ICMP errors, non-first fragments, multicast or
 * broadcast packets, or packets from unspecified addresses (RFC 1122 3.2.2,
 * RFC 4443 2.4), and at most `set reject-rate` per second.
 */
#ifndef TORSIEVE_REJECT_H
#define TORSIEVE_REJECT_H

#include <stddef.h>
#include <stdint.h>

#include "torsieve/decode.h"
#include "torsieve/policy.h"

/* The largest error built: IPv4's 576-byte minimum datagram, or an
 * ICMPv6 message within IPv6's 1280-byte minimum MTU. */
#define TS_ICMP_ERROR_MAX 1240

/*
 * Build the error answering the IP packet ip (len bytes from its IP header,
 * decoded as d) with reject kind (not TCP reset). IPv4: a whole IP packet;
 * IPv6: the ICMPv6 message, checksummed. Returns its length, or 0 when the
 * packet must not be answered.
 */
size_t ts_icmp_error_build(const uint8_t *ip, uint32_t len, const struct ts_decoded *d,
                           enum ts_reject_kind kind, uint8_t *out, size_t cap);

struct ts_reject_stats {
	uint64_t sent;
	uint64_t limited;    /* over reject-rate: dropped without an answer */
	uint64_t unanswered; /* packets that must not be answered */
	uint64_t failed;     /* the send failed */
};

struct ts_rejecter;

/* Raw sockets for both families, bound to the client interface iface so an
 * error can only go back to the client side (needs CAP_NET_RAW and
 * CAP_NET_ADMIN). NULL with the reason in err. */
struct ts_rejecter *ts_rejecter_open(uint32_t rate_per_second, const char *iface, char *err,
                                     size_t errlen);
void ts_rejecter_close(struct ts_rejecter *r);

/* Answer a packet (frame is the captured frame, d its decode) with kind,
 * at time now_usec. ifindex scopes a link-local destination. */
void ts_reject_send(struct ts_rejecter *r, const uint8_t *frame, uint32_t caplen,
                    const struct ts_decoded *d, enum ts_reject_kind kind, uint32_t ifindex,
                    int64_t now_usec);

const struct ts_reject_stats *ts_rejecter_stats(const struct ts_rejecter *r);

#endif
