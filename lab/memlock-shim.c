/*
 * libpk-memlock-shim.so — LD_PRELOAD library for the lab's sanlock daemons.
 *
 * sanlock (3.8, privileged mode) raises RLIMIT_MEMLOCK, RLIMIT_RTPRIO and
 * RLIMIT_CORE to unlimited at start-up and exits if any call fails. In
 * containers without CAP_SYS_RESOURCE the hard limits of the first two
 * cannot be raised. This shim answers 0 to setrlimit/setrlimit64/prlimit/
 * prlimit64 calls that SET one of those two resources and passes every
 * other call (every other resource, every read) through unchanged.
 *
 * Nothing depends on the pretended limits: the lab starts sanlock with
 * `-l 0` (no mlockall) and `-h 0` (no real-time scheduling).
 *
 * Lab only: production hosts raise the limit normally and need no shim.
 * Built by the Makefile as $(BUILD)/libpk-memlock-shim.so (-shared -fPIC -ldl).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

/* The resource type differs between glibc's prototypes; use int for all. */
typedef int (*setrlimit_fn)(int, const struct rlimit *);
typedef int (*setrlimit64_fn)(int, const struct rlimit64 *);
typedef int (*prlimit_fn)(pid_t, int, const struct rlimit *, struct rlimit *);
typedef int (*prlimit64_fn)(pid_t, int, const struct rlimit64 *,
			    struct rlimit64 *);

static void *next_symbol(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

/* The resources whose raise is pretended. */
static int pretended(int resource)
{
	return resource == RLIMIT_MEMLOCK || resource == RLIMIT_RTPRIO;
}

int setrlimit(__rlimit_resource_t resource, const struct rlimit *rlim)
{
	setrlimit_fn next;

	if (pretended((int)resource)) {
		return 0;
	}
	next = (setrlimit_fn)next_symbol("setrlimit");
	if (next == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return next((int)resource, rlim);
}

int setrlimit64(__rlimit_resource_t resource, const struct rlimit64 *rlim)
{
	setrlimit64_fn next;

	if (pretended((int)resource)) {
		return 0;
	}
	next = (setrlimit64_fn)next_symbol("setrlimit64");
	if (next == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return next((int)resource, rlim);
}

/* prlimit with new_limit == NULL only reads; answer those truthfully. */
int prlimit(pid_t pid, __rlimit_resource_t resource,
	    const struct rlimit *new_limit, struct rlimit *old_limit)
{
	prlimit_fn next;

	next = (prlimit_fn)next_symbol("prlimit");
	if (next == NULL) {
		errno = ENOSYS;
		return -1;
	}
	if (pretended((int)resource) && new_limit != NULL) {
		if (old_limit != NULL &&
		    next(pid, (int)resource, NULL, old_limit) != 0) {
			return -1;
		}
		return 0;
	}
	return next(pid, (int)resource, new_limit, old_limit);
}

int prlimit64(pid_t pid, __rlimit_resource_t resource,
	      const struct rlimit64 *new_limit, struct rlimit64 *old_limit)
{
	prlimit64_fn next;

	next = (prlimit64_fn)next_symbol("prlimit64");
	if (next == NULL) {
		errno = ENOSYS;
		return -1;
	}
	if (pretended((int)resource) && new_limit != NULL) {
		if (old_limit != NULL &&
		    next(pid, (int)resource, NULL, old_limit) != 0) {
			return -1;
		}
		return 0;
	}
	return next(pid, (int)resource, new_limit, old_limit);
}
