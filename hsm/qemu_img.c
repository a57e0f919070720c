/* hsm_qemu_img: sizes and chains from qemu-img (see qemu_img.h). */
#include "hsm/qemu_img.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/parse.h"
#include "common/proc.h"
#include "common/strv.h"
#include "common/xalloc.h"

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

/* qemu's protocol driver for a path: a block device or a file. */
static const char *proto_driver(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISBLK(st.st_mode) ? "host_device" : "file";
}

/* The json: spec of the qcow2 image at path with its backing left closed
 * ("backing": null: the header's backing file is named, never opened).
 * Heap. A path in a json: spec must need no escaping; ours never do. */
static int qcow2_alone(const char *path, char **ret, struct pk_error *err)
{
	if (path[0] != '/' || strpbrk(path, "\"\\")) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "path '%s' cannot be passed to qemu-img", path);
	}
	*ret = pk_xasprintf("json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":"
			    "{\"driver\":\"%s\",\"filename\":\"%s\"}}", proto_driver(path), path);
	return 0;
}

int hsm_qemu_img_image_end(const char *path, uint64_t *ret, struct pk_error *err)
{
	struct pk_proc_result res = { 0 };
	char *spec = NULL;
	int r;

	r = qcow2_alone(path, &spec, err);
	if (r < 0) {
		return r;
	}
	/* Without its backing: the end of this file is all that is asked. */
	const char *argv[] = { "qemu-img", "check", "-U", "--output=json", spec, NULL };
	r = pk_proc_run(argv, HSM_QEMU_IMG_TIMEOUT_MS, &res, err);
	free(spec);
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

/* ---- JSON of qemu-img info ------------------------------------------------------ */

static const char *json_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
		p++;
	}
	return p;
}

/* Reads the string starting at *p (at the opening quote); *ret heap. */
static int json_string(const char **p, char **ret)
{
	const char *s = *p + 1;
	struct pk_buf out = PK_BUF_INIT;

	for (; *s && *s != '"'; s++) {
		char c = *s;
		if (c == '\\') {
			s++;
			switch (*s) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u': {
				unsigned v = 0;
				for (int i = 1; i <= 4; i++) {
					char h = s[i];
					if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') ||
					      (h >= 'A' && h <= 'F'))) {
						pk_buf_release(&out);
						return -EINVAL;
					}
					v = v * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
				}
				s += 4;
				c = v < 0x80 && v > 0 ? (char)v : '?';
				break;
			}
			case '\0':
				pk_buf_release(&out);
				return -EINVAL;
			default: c = *s; break; /* \" \\ \/ */
			}
		}
		pk_buf_putc(&out, c);
	}
	if (*s != '"') {
		pk_buf_release(&out);
		return -EINVAL;
	}
	*p = s + 1;
	*ret = pk_buf_steal(&out, NULL);
	return 0;
}

/* Past the JSON value at p (after white space); NULL when malformed. */
static const char *json_skip(const char *p)
{
	int depth = 0;

	p = json_ws(p);
	do {
		if (*p == '"') {
			char *s = NULL;

			if (json_string(&p, &s) < 0) {
				return NULL;
			}
			free(s);
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			if (depth == 0) {
				return NULL;
			}
			depth--;
			p++;
		} else if (*p == '\0') {
			return NULL;
		} else if (depth > 0) {
			p++; /* ',', ':', white space or a scalar inside */
		} else {
			/* a scalar at our level: number, true, false, null */
			const char *s = p;

			while (*p && !strchr(",}] \t\r\n", *p)) {
				p++;
			}
			if (p == s) {
				return NULL;
			}
		}
	} while (depth > 0);
	return p;
}

void hsm_qemu_img_info_release(struct hsm_qemu_img_info *info)
{
	if (!info) {
		return;
	}
	free(info->filename);
	free(info->format);
	free(info->backing);
	free(info->backing_format);
	memset(info, 0, sizeof(*info));
}

int hsm_qemu_img_info_parse(const char *json, struct hsm_qemu_img_info *ret,
			    struct pk_error *err)
{
	struct hsm_qemu_img_info info = { 0 };
	char *rel = NULL; /* backing-filename, when no full one is printed */
	const char *p = json_ws(json ? json : "");

	if (*p++ != '{') {
		goto bad;
	}
	p = json_ws(p);
	if (*p == '}') {
		goto bad; /* no "filename" in an empty object */
	}
	for (;;) {
		char *key = NULL, **slot = NULL;

		p = json_ws(p);
		if (*p != '"' || json_string(&p, &key) < 0) {
			goto bad;
		}
		if (!strcmp(key, "filename")) {
			slot = &info.filename;
		} else if (!strcmp(key, "format")) {
			slot = &info.format;
		} else if (!strcmp(key, "full-backing-filename")) {
			slot = &info.backing;
		} else if (!strcmp(key, "backing-filename")) {
			slot = &rel;
		} else if (!strcmp(key, "backing-filename-format")) {
			slot = &info.backing_format;
		}
		free(key);
		p = json_ws(p);
		if (*p++ != ':') {
			goto bad;
		}
		p = json_ws(p);
		if (slot && *p == '"') {
			free(*slot);
			*slot = NULL;
			if (json_string(&p, slot) < 0) {
				goto bad;
			}
		} else if (!(p = json_skip(p))) {
			goto bad;
		}
		p = json_ws(p);
		if (*p == '}') {
			p++;
			break;
		}
		if (*p++ != ',') {
			goto bad;
		}
	}
	if (*json_ws(p) || !info.filename) {
		goto bad;
	}
	if (!info.backing && rel) {
		info.backing = rel;
		rel = NULL;
	}
	free(rel);
	*ret = info;
	return 0;
bad:
	free(rel);
	hsm_qemu_img_info_release(&info);
	return pk_error_set(err, PK_E_INTERNAL, EINVAL,
			    "qemu-img info printed malformed JSON or no image");
}

/* ---- one image, then the chain ----------------------------------------------------- */

static int info_one(const struct hsm_qemu_img_file *f, struct hsm_qemu_img_info *ret,
		    struct pk_error *err)
{
	char *spec = NULL, *out = NULL;
	int r;

	if (f->path[0] != '/' || strpbrk(f->path, "\"\\")) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "path '%s' cannot be passed to qemu-img", f->path);
	}
	if (f->qcow2) {
		r = qcow2_alone(f->path, &spec, err);
		if (r < 0) {
			return r;
		}
		const char *argv[] = { "qemu-img", "info", "-U", "--output=json", spec, NULL };
		r = pk_proc_check(argv, HSM_QEMU_IMG_TIMEOUT_MS, PK_E_IO, &out, err);
	} else {
		const char *argv[] = { "qemu-img", "info", "-U", "-f", "raw", "--output=json",
				       f->path, NULL };
		r = pk_proc_check(argv, HSM_QEMU_IMG_TIMEOUT_MS, PK_E_IO, &out, err);
	}
	if (r == 0) {
		r = hsm_qemu_img_info_parse(out, ret, err);
	}
	free(out);
	free(spec);
	return r;
}

/* The file a header's backing name stands for: relative names are
 * resolved beside the image, as qemu does. Heap. */
static char *backing_path(const char *image, const char *backing)
{
	const char *slash = strrchr(image, '/');

	if (backing[0] == '/' || !slash) {
		return pk_xstrdup(backing);
	}
	return pk_xasprintf("%.*s/%s", (int)(slash - image), image, backing);
}

static const struct hsm_qemu_img_file *file_find(const struct hsm_qemu_img_file *files,
						 size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(files[i].path, path)) {
			return &files[i];
		}
	}
	return NULL;
}

int hsm_qemu_img_chain(const struct hsm_qemu_img_file *files, size_t nfiles, char ***ret,
		       size_t *ret_n, struct pk_error *err)
{
	struct pk_strv names = PK_STRV_INIT;
	const struct hsm_qemu_img_file *f = nfiles ? &files[0] : NULL;
	int r = 0;

	if (!f) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "no image to read");
	}
	/* Each file is opened at most once in a chain without loops. */
	for (size_t step = 0; f && step < nfiles; step++) {
		struct hsm_qemu_img_info info = { 0 };
		const struct hsm_qemu_img_file *next = NULL;

		r = info_one(f, &info, err);
		if (r < 0) {
			goto fail;
		}
		pk_strv_push(&names, f->path);
		if (info.backing) {
			char *path = backing_path(f->path, info.backing);
			const char *fmt;

			next = file_find(files, nfiles, path);
			fmt = next && next->qcow2 ? "qcow2" : "raw";
			if (!next) {
				pk_strv_push_take(&names, path);
			} else if (!info.backing_format) {
				/* qemu would probe it: as unsafe as a wrong format */
				pk_strv_push_take(&names, pk_xasprintf("%s (no format in the header)",
								       path));
				free(path);
				next = NULL;
			} else if (strcmp(info.backing_format, fmt) != 0) {
				pk_strv_push_take(&names, pk_xasprintf("%s (format %s in the header)",
								       path, info.backing_format));
				free(path);
				next = NULL;
			} else {
				free(path);
			}
		}
		hsm_qemu_img_info_release(&info);
		f = next;
	}
	if (f) {
		r = pk_error_set(err, PK_E_ILLEGAL, ELOOP,
				 "the backing chain of '%s' in the qcow2 headers loops",
				 files[0].path);
		goto fail;
	}
	*ret = pk_strv_steal(&names, ret_n);
	return 0;
fail:
	pk_strv_release(&names);
	return r;
}
