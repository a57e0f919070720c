/*
 * pk_clock — the two clocks poolkeeper reads, in the units it uses.
 *
 *  - CLOCK_MONOTONIC for durations, timeouts and deadlines: it never jumps
 *    when the wall clock is set.
 *  - CLOCK_REALTIME only for instants a person or another host reads
 *    (task and job timestamps, event times), never to measure time.
 *
 * pk_clock_deadline() gives the absolute timespec a timed wait wants
 * (pthread_cond_timedwait, sem_timedwait); the clock passed must be the
 * one the condition variable was created with (CLOCK_REALTIME unless its
 * attribute says otherwise).
 *
 * All functions are thread-safe and cannot fail.
 */
#ifndef PK_CLOCK_H
#define PK_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC (an arbitrary origin: compare, don't show). */
uint64_t pk_clock_monotonic_ms(void);

/* Microseconds of CLOCK_MONOTONIC, for measurements finer than a millisecond. */
uint64_t pk_clock_monotonic_us(void);

/* Milliseconds since the epoch (CLOCK_REALTIME). */
uint64_t pk_clock_realtime_ms(void);
/* Wall clock in microseconds: an order of events that survives restarts. */
uint64_t pk_clock_realtime_us(void);

/* *ret = now on `clock` + ms. */
void pk_clock_deadline(clockid_t clock, unsigned ms, struct timespec *ret);

#endif
