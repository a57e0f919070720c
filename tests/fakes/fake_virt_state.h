/*
 * Internal to tests/fakes/fake_virt*.c, which together make the in-memory
 * libvirtd described in fake_virt.h; tests include fake_virt.h only.
 *
 * The fake's state is one process-global object, fake_virtd (a fake stands
 * in for a daemon), defined in fake_virt.c. fake_virtd.lock guards every
 * other field; callers MUST hold it to call any function below.
 */
#ifndef PK_FAKE_VIRT_STATE_H
#define PK_FAKE_VIRT_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/uuid.h"
#include "hsm/virt.h"
#include "hsm/vmxml.h"
#include "tests/fakes/fake_virt.h"

struct layer {
	char *path;
	enum hsm_disk_format format;
	bool block;
	int index; /* -1 while the domain is shut off */
};

struct job {
	bool on;
	enum hsm_virt_job_type type;
	int base_index;           /* -1: none (pull to no base) */
	int top_index;            /* commit only */
	uint64_t cur, end, bandwidth;
	enum hsm_vmxml_mirror mirror;
	bool applied;             /* a manual pivot already switched the chain */
	bool hidden;              /* job info says "no job" (the job still ends) */
};

struct disk {
	char target[HSM_VMXML_TARGET_MAX];
	char bus[16];
	struct layer *layers; /* leaf first */
	size_t n;
	struct job job;
	uint64_t written;     /* bytes the guest wrote (block stats) */
	uint64_t guest_rate;  /* fake_virt_guest_writes */
	uint64_t guest_region;
	uint64_t guest_ms;    /* when the guest's writes were last counted */
	uint64_t threshold;   /* armed block threshold, 0: none */
	uint64_t allocation;  /* block info */
	uint64_t physical;
};

struct domain {
	char name[HSM_VM_NAME_MAX + 1];
	char uuid[PK_UUID_BUFLEN];
	char type[16];
	enum hsm_virt_state state;
	int id;
	bool agent;
	bool has_meta;
	struct hsm_drive_id *drives;
	size_t ndrives;
	struct disk *disks;
	size_t ndisks;
	int next_index;
	int disk_error;        /* 0 none, 1 no space, 2 other (until resumed) */
};

struct image {
	char *path;
	char *backing;
	enum hsm_disk_format format;
};

enum ev_kind { EV_JOB, EV_LIFECYCLE, EV_RECONNECTED };

struct event {
	enum ev_kind kind;
	char vm[HSM_VM_NAME_MAX + 1];
	char disk[HSM_VMXML_TARGET_MAX];
	int a, b;
};

struct fake_virtd {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct domain **doms;
	size_t ndoms;
	struct image *images;
	size_t nimages;
	struct {
		bool armed;
		enum pk_errc code;
		char message[256];
	} fail[FAKE_VIRT_OP_COUNT];
	unsigned calls[FAKE_VIRT_OP_COUNT];
	struct fake_virt_call last[FAKE_VIRT_OP_COUNT];
	bool has_last[FAKE_VIRT_OP_COUNT];
	bool connected;
	unsigned generation;
	bool manual_pivot;
	int next_id;
	struct hsm_virt *current;
	struct event *queue;
	size_t nqueue;
	bool delivering;
	char *created_xml; /* the XML of the last successful create */
};

extern struct fake_virtd fake_virtd;

void fake_virtd_domain_free(struct domain *d);
/* NULL when there is no such domain or disk. */
struct domain *fake_virtd_find_dom(const char *name);
struct disk *fake_virtd_find_disk(struct domain *d, const char *target);

/* Queues an event for the event thread; dropped while disconnected or
 * without a struct hsm_virt. */
void fake_virtd_queue_event(enum ev_kind kind, const char *vm, const char *disk, int a, int b);

/* Counts a call of op, then fails it if injected or while disconnected. */
int fake_virtd_begin(enum fake_virt_op op, struct pk_error *err);
/* Remembers the arguments of a successful call (fake_virt_last_call). */
void fake_virtd_record(enum fake_virt_op op, const char *vm, const char *disk, const char *base,
		       const char *top, bool flag, uint64_t bandwidth);
/* The domain, or NOT_FOUND. */
int fake_virtd_get_dom(const char *name, struct domain **ret, struct pk_error *err);

/* Running: a new id and new indexes; shut off: no id, jobs and indexes dropped. */
void fake_virtd_set_running(struct domain *d);
void fake_virtd_set_shutoff(struct domain *d);

/* The chain position of the layer with this index; -1 if none. */
int fake_virtd_pos_of_index(const struct disk *k, int index);
/* Applies a finished job's effect on the chain. */
void fake_virtd_apply_job(struct disk *k);
/* Counts the guest's writes up to now (fake_virt_guest_writes). */
void fake_virtd_guest_advance(const struct domain *d, struct disk *k);
/* Ends the disk's job and queues its BLOCK_JOB event with status. */
void fake_virtd_end_job(const struct domain *d, struct disk *k,
			enum hsm_virt_job_status status);

#endif
