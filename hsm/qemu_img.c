/* hsm_qemu_img: sizes from qemu-img (see qemu_img.h). */
#include "hsm/qemu_img.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "common/proc.h"

int hsm_qemu_img_json_u64(const char *json, const char *key, uint64_t *ret)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(json, pat);
	if (!p) {
		return -ENOENT;
	}
	p += strlen(pat);
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == ':') {
		p++;
	}
	return pk_parse_u64_prefix(p, strlen(p), ret, NULL);
}

int hsm_qemu_img_image_end(const char *path, uint64_t *ret, struct pk_error *err)
{
	const char *argv[] = { "qemu-img", "check", "-U", "-f", "qcow2", "--output=json", path,
			       NULL };
	struct pk_proc_result res = { 0 };
	int r;

	r = pk_proc_run(argv, HSM_QEMU_IMG_TIMEOUT_MS, &res, err);
	if (r < 0) {
		return r;
	}
	/* check exits non-zero for leaked clusters yet prints the end: use it. */
	r = hsm_qemu_img_json_u64(res.out, "image-end-offset", ret);
	pk_proc_result_release(&res);
	return r < 0 ? -ENOENT : 0;
}

int hsm_qemu_img_measure_full(uint64_t capacity, uint64_t *ret, struct pk_error *err)
{
	char size[32];
	char *out = NULL;
	int r;

	snprintf(size, sizeof(size), "%" PRIu64, capacity);
	const char *argv[] = { "qemu-img", "measure", "--output=json", "-O", "qcow2", "--size",
			       size, NULL };
	r = pk_proc_check(argv, HSM_QEMU_IMG_TIMEOUT_MS, PK_E_IO, &out, err);
	if (r == 0 && hsm_qemu_img_json_u64(out, "fully-allocated", ret) < 0) {
		r = pk_error_set(err, PK_E_INTERNAL, EINVAL, "qemu-img measure gave no size");
	}
	free(out);
	return r;
}
