#include "common/clock.h"

static uint64_t clock_read_us(clockid_t clock)
{
	struct timespec ts;

	/* Fails only for an invalid clock id, which these constants are not. */
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t pk_clock_monotonic_ms(void)
{
	return clock_read_us(CLOCK_MONOTONIC) / 1000u;
}

uint64_t pk_clock_monotonic_us(void)
{
	return clock_read_us(CLOCK_MONOTONIC);
}

uint64_t pk_clock_realtime_ms(void)
{
	return clock_read_us(CLOCK_REALTIME) / 1000u;
}

uint64_t pk_clock_realtime_us(void)
{
	return clock_read_us(CLOCK_REALTIME);
}

void pk_clock_deadline(clockid_t clock, unsigned ms, struct timespec *ret)
{
	clock_gettime(clock, ret);
	ret->tv_sec += ms / 1000;
	ret->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ret->tv_nsec >= 1000000000L) {
		ret->tv_sec++;
		ret->tv_nsec -= 1000000000L;
	}
}
