#include "common/strv.h"

#include <stdlib.h>

#include "common/xalloc.h"

void pk_strv_push_take(struct pk_strv *sv, char *s)
{
	sv->v = pk_xgrow(sv->v, &sv->cap, sv->n + 2, sizeof(*sv->v));
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
}

void pk_strv_push(struct pk_strv *sv, const char *s)
{
	pk_strv_push_take(sv, pk_xstrdup(s));
}

char **pk_strv_steal(struct pk_strv *sv, size_t *ret_n)
{
	char **v = sv->v;

	if (ret_n) {
		*ret_n = sv->n;
	}
	sv->v = NULL;
	sv->n = 0;
	sv->cap = 0;
	return v;
}

void pk_strv_release(struct pk_strv *sv)
{
	if (!sv) {
		return;
	}
	pk_strv_free(pk_strv_steal(sv, NULL));
}

void pk_strv_free(char **strv)
{
	if (!strv) {
		return;
	}
	for (size_t i = 0; strv[i]; i++) {
		free(strv[i]);
	}
	free(strv);
}
