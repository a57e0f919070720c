#include "common/fault.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

void pk_fault_point(const char *name)
{
	const char *faults = getenv("PK_FAULT");
	size_t n = strlen(name);

	if (!faults || !*faults) {
		return;
	}
	for (const char *p = faults; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (strncmp(p, name, n) == 0 && (p[n] == '\0' || p[n] == ',')) {
			pk_log_warn("fault point reached point='%s': killing the process", name);
			kill(getpid(), SIGKILL);
			pause();
		}
	}
}
