#include "spm/requests.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/uuid.h"
#include "common/xalloc.h"

struct deletion {
	char request[PK_UUID_BUFLEN];
	char volume[PK_UUID_BUFLEN];
};

struct spm_requests {
	pthread_mutex_t lock;
	struct deletion ring[SPM_REQUESTS_MAX];
	size_t next; /* the slot written next (the oldest once full) */
};

struct spm_requests *spm_requests_new(void)
{
	struct spm_requests *rq = pk_xcalloc(1, sizeof(*rq));

	pthread_mutex_init(&rq->lock, NULL);
	return rq;
}

void spm_requests_free(struct spm_requests *rq)
{
	if (!rq) {
		return;
	}
	pthread_mutex_destroy(&rq->lock);
	free(rq);
}

void spm_requests_deleted(struct spm_requests *rq, const char *request, const char *volume)
{
	if (!rq || !request || !*request) {
		return;
	}
	pthread_mutex_lock(&rq->lock);
	snprintf(rq->ring[rq->next].request, PK_UUID_BUFLEN, "%s", request);
	snprintf(rq->ring[rq->next].volume, PK_UUID_BUFLEN, "%s", volume);
	rq->next = (rq->next + 1) % SPM_REQUESTS_MAX;
	pthread_mutex_unlock(&rq->lock);
}

bool spm_requests_did_delete(struct spm_requests *rq, const char *request, const char *volume)
{
	bool found = false;

	if (!rq || !request || !*request) {
		return false;
	}
	pthread_mutex_lock(&rq->lock);
	for (size_t i = 0; i < SPM_REQUESTS_MAX && !found; i++) {
		found = !strcmp(rq->ring[i].request, request) && !strcmp(rq->ring[i].volume, volume);
	}
	pthread_mutex_unlock(&rq->lock);
	return found;
}
