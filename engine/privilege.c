/* Dropping root to one user with CAP_NET_ADMIN (and CAP_NET_BIND_SERVICE) only. */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "torsieve/privilege.h"

static int set_caps(uint32_t keep)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = keep;
	return (int)syscall(SYS_capset, &hdr, data);
}

int ts_drop_privileges(const char *user, bool low_ports, char *err, size_t errlen)
{
	struct passwd *pw = getpwnam(user);
	char *end;
	unsigned long id = strtoul(user, &end, 10);
	if (!pw && *user && !*end)
		pw = getpwuid((uid_t)id);
	if (!pw) {
		snprintf(err, errlen, "--user %s: no such user", user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "--user %s: that is root; name an unprivileged user", user);
		return -1;
	}
	uint32_t keep = 1u << CAP_NET_ADMIN;
	if (low_ports)
		keep |= 1u << CAP_NET_BIND_SERVICE;
	if (prctl(PR_SET_KEEPCAPS, 1) < 0 || setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0 || set_caps(keep) < 0 || prctl(PR_SET_KEEPCAPS, 0) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "--user %s: dropping privileges failed: %s", user,
		         strerror(errno));
		return -1;
	}
	/* Make sure there is no way back. */
	if (setuid(0) == 0) {
		snprintf(err, errlen, "--user %s: root could be regained; refusing to run", user);
		return -1;
	}
	return 0;
}
