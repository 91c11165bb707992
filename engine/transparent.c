/* Transparent sockets (transparent.h). */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "torsieve/transparent.h"

socklen_t ts_sockaddr_any(int family, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	return sizeof(*s4);
}

int ts_transparent_socket(const struct sockaddr_storage *at, socklen_t len, int type,
                          unsigned flags, int backlog, enum ts_transparent_step *failed)
{
	*failed = TS_TRANSPARENT_SOCKET;
	int fd = socket(at->ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	int rc = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (at->ss_family == AF_INET6) {
		if (!rc)
			rc = setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (!rc)
			rc = setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof(one));
		if (!rc && (flags & TS_TRANSPARENT_ORIGDST))
			rc = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof(one));
	} else {
		if (!rc)
			rc = setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one));
		if (!rc && (flags & TS_TRANSPARENT_ORIGDST))
			rc = setsockopt(fd, IPPROTO_IP, IP_RECVORIGDSTADDR, &one, sizeof(one));
	}
	if (!rc) {
		*failed = TS_TRANSPARENT_BIND;
		rc = bind(fd, (const struct sockaddr *)at, len);
		if (!rc && backlog)
			rc = listen(fd, backlog);
	} else {
		*failed = TS_TRANSPARENT_OPTION;
	}
	if (rc < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}
