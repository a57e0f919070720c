#include "hsm/chain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/proc.h"
#include "common/strv.h"
#include "common/uuid.h"
#include "common/xalloc.h"
#include "hsm/image.h"
#include "hsm/vm.h"

#define QEMU_IMG_TIMEOUT_MS 30000

void hsm_chain_report_release(struct hsm_chain_report *rep)
{
	if (!rep) {
		return;
	}
	pk_strv_free(rep->metadata);
	pk_strv_free(rep->live);
	pk_strv_free(rep->defined);
	memset(rep, 0, sizeof(*rep));
}

/* ---- qemu-img's JSON ----------------------------------------------------------- */

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

int hsm_qemu_img_chain_parse(const char *json, char ***ret, size_t *ret_n,
			     struct pk_error *err)
{
	const char *p = json_ws(json ? json : "");
	struct pk_strv names = PK_STRV_INIT;
	int depth = 0;
	bool want_filename = false;

	if (*p != '[') {
		return pk_error_set(err, PK_E_INTERNAL, EINVAL,
				    "qemu-img printed no JSON array of images");
	}
	while (*p) {
		p = json_ws(p);
		if (!*p) {
			break;
		}
		if (*p == '[' || *p == '{') {
			depth++;
			p++;
			want_filename = false;
		} else if (*p == ']' || *p == '}') {
			depth--;
			p++;
			if (depth == 0) {
				break;
			}
		} else if (*p == '"') {
			char *s = NULL;
			if (json_string(&p, &s) < 0) {
				pk_strv_release(&names);
				return pk_error_set(err, PK_E_INTERNAL, EINVAL,
						    "qemu-img printed a malformed JSON string");
			}
			p = json_ws(p);
			if (*p == ':') {
				/* a key: only each image's own "filename" counts */
				want_filename = depth == 2 && !strcmp(s, "filename");
				p++;
				free(s);
			} else if (want_filename) {
				pk_strv_push_take(&names, s);
				want_filename = false;
			} else {
				free(s);
			}
		} else {
			/* a number, true, false, null, ',' */
			p++;
		}
	}
	if (depth != 0 || names.n == 0) {
		bool some = names.n > 0;

		pk_strv_release(&names);
		return pk_error_set(err, PK_E_INTERNAL, EINVAL,
				    "qemu-img's JSON is %s", some ? "truncated" : "without any image");
	}
	*ret = pk_strv_steal(&names, ret_n);
	return 0;
}

static int qemu_img_chain(const char *leaf, char ***ret, size_t *ret_n, struct pk_error *err)
{
	const char *argv[] = { "qemu-img", "info", "--backing-chain", "--output=json", "-U", leaf,
			       NULL };
	char *out = NULL, **files = NULL;
	size_t n = 0;
	int r;

	r = pk_proc_check(argv, QEMU_IMG_TIMEOUT_MS, PK_E_IO, &out, err);
	if (r == 0) {
		r = hsm_qemu_img_chain_parse(out, &files, &n, err);
	}
	free(out);
	if (r < 0) {
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		char *id = hsm_path_volume_id(files[i]);
		free(files[i]);
		files[i] = id;
	}
	*ret = files;
	*ret_n = n;
	return 0;
}

/* ---- GetVolumeChain ------------------------------------------------------------ */

static bool chains_equal(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb) {
		return false;
	}
	for (size_t i = 0; i < na; i++) {
		if (strcmp(a[i], b[i]) != 0) {
			return false;
		}
	}
	return true;
}

/*
 * A shut-off VM's definition agrees with the chain qemu-img reads when it
 * names the same leaf and every backing layer it lists (libvirt writes the
 * chain there at a live snapshot; with none listed it reads the headers) is
 * a layer of that chain: a merged-away layer listed there is what the next
 * start would look for. Only the layers it lists are judged, not their
 * order or number, which libvirt keeps in its own ways across live jobs;
 * a path that is not a volume cannot be judged and is skipped.
 */
static bool definition_agrees(char **def, size_t ndef, char **live, size_t nlive)
{
	if (ndef == 0) {
		return true;
	}
	if (nlive == 0 || strcmp(def[0], live[0]) != 0) {
		return false;
	}
	for (size_t i = 1; i < ndef; i++) {
		bool found = !pk_uuid_valid(def[i]);
		for (size_t k = 0; k < nlive && !found; k++) {
			found = !strcmp(def[i], live[k]);
		}
		if (!found) {
			return false;
		}
	}
	return true;
}

/* The live chain from a VM's drive (rep->domain/image filled or checked). */
static int live_from_vm(struct hsm *hsm, const char *vm, const char *drive,
			struct hsm_chain_report *rep, struct pk_error *err)
{
	struct hsm_vm_info info = { 0 };
	const struct hsm_drive_info *d = NULL;
	int r;

	r = hsm_vm_get(hsm, vm, &info, err);
	if (r < 0) {
		return r;
	}
	if (drive && *drive) {
		d = hsm_vm_info_drive(&info, drive);
		if (!d) {
			r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "VM '%s' has no drive '%s'", vm,
					 drive);
			goto out;
		}
		if (rep->image[0] &&
		    (strcmp(d->id.image_id, rep->image) || strcmp(d->id.domain_id, rep->domain))) {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					 "drive '%s' of VM '%s' holds image '%s', not image '%s'",
					 drive, vm, d->id.image_id, rep->image);
			goto out;
		}
	} else {
		for (size_t i = 0; i < info.ndrives && !d; i++) {
			if (!strcmp(info.drives[i].id.image_id, rep->image) &&
			    !strcmp(info.drives[i].id.domain_id, rep->domain)) {
				d = &info.drives[i];
			}
		}
		if (!d) {
			r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
					 "VM '%s' has no drive on image '%s'", vm, rep->image);
			goto out;
		}
	}
	snprintf(rep->domain, sizeof(rep->domain), "%s", d->id.domain_id);
	snprintf(rep->image, sizeof(rep->image), "%s", d->id.image_id);
	if (info.state != HSM_VIRT_STATE_RUNNING && info.state != HSM_VIRT_STATE_PAUSED) {
		rep->defined = pk_xcalloc(d->nlive + 1, sizeof(char *));
		for (size_t i = 0; i < d->nlive; i++) {
			rep->defined[i] = pk_xstrdup(d->live_chain[i]);
		}
		rep->ndefined = d->nlive;
		r = 1; /* not running: the caller asks qemu-img */
		goto out;
	}
	rep->live = pk_xcalloc(d->nlive + 1, sizeof(char *));
	for (size_t i = 0; i < d->nlive; i++) {
		rep->live[i] = pk_xstrdup(d->live_chain[i]);
	}
	rep->nlive = d->nlive;
	rep->live_source = "libvirt";
out:
	hsm_vm_info_release(&info);
	return r;
}

int hsm_volume_chain(struct hsm *hsm, const char *domain, const char *image, const char *vm,
		     const char *drive, struct hsm_chain_report *ret, struct pk_error *err)
{
	struct hsm_chain_report rep = { 0 };
	struct hsm_chain chain = { 0 };
	char user[HSM_VM_NAME_MAX + 1];
	char link[HSM_PATH_MAX];
	int r, live = 0;

	if (vm && !*vm) {
		vm = NULL;
	}
	if (vm && (!drive || !*drive) && (!image || !*image)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "with a VM, name its drive or the image");
	}
	if (!vm || (domain && *domain) || (image && *image)) {
		r = pk_uuid_check_ids(domain, image, NULL, err);
		if (r < 0) {
			return r;
		}
		snprintf(rep.domain, sizeof(rep.domain), "%s", domain);
		snprintf(rep.image, sizeof(rep.image), "%s", image);
	}
	if (!vm) {
		/* A VM of this host on the image? Its live XML is the truth. */
		r = hsm_vm_image_user(hsm, rep.domain, rep.image, user, NULL, err);
		if (r < 0) {
			return r;
		}
		if (r > 0) {
			vm = user;
		}
	}
	if (vm) {
		live = live_from_vm(hsm, vm, drive, &rep, err);
		if (live < 0) {
			hsm_chain_report_release(&rep);
			return live;
		}
	}
	r = hsm_image_chain_read(hsm, rep.domain, rep.image, NULL, &chain, err);
	if (r < 0) {
		goto fail;
	}
	rep.metadata = pk_xcalloc(chain.n + 1, sizeof(char *));
	for (size_t i = 0; i < chain.n; i++) {
		rep.metadata[i] = pk_xstrdup(chain.v[i].id);
	}
	rep.nmetadata = chain.n;
	if (!rep.live_source) {
		/* No running VM: what qemu would open from the prepared leaf. */
		const char *leaf = chain.v[0].id;
		r = hsm_image_volume_ready(hsm, rep.domain, rep.image, leaf, NULL, err);
		if (r == 0) {
			r = hsm_image_link_path(hsm, rep.domain, rep.image, leaf, link, sizeof(link),
						err);
		}
		if (r == 0) {
			r = qemu_img_chain(link, &rep.live, &rep.nlive, err);
		}
		if (r < 0) {
			goto fail;
		}
		rep.live_source = "qemu-img";
	}
	rep.consistent = chains_equal(rep.metadata, rep.nmetadata, rep.live, rep.nlive) &&
			 definition_agrees(rep.defined, rep.ndefined, rep.live, rep.nlive);
	hsm_chain_release(&chain);
	*ret = rep;
	return 0;
fail:
	hsm_chain_release(&chain);
	hsm_chain_report_release(&rep);
	return r;
}
