#include "hsm/image.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/activation.h"
#include "common/locks.h"
#include "common/log.h"
#include "common/lvm.h"
#include "common/strv.h"
#include "common/volchain.h"
#include "common/xalloc.h"
#include "hsm/spm_calls.h"
#include "hsm/vm.h"

#define VOLUME_MODE 0660

/* ---- ids and paths ------------------------------------------------------------ */

static int image_dir(const struct hsm *hsm, const char *domain, const char *image, char *buf,
		     size_t size, struct pk_error *err)
{
	if (snprintf(buf, size, "%s/%s/%s", hsm->storage_dir, domain, image) >= (int)size) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				    "run_dir '%s' is too long for image paths",
				    hsm->settings.run_dir);
	}
	return 0;
}

int hsm_image_link_path(const struct hsm *hsm, const char *domain, const char *image,
			const char *volume, char *buf, size_t size, struct pk_error *err)
{
	if (snprintf(buf, size, "%s/%s/%s/%s", hsm->storage_dir, domain, image, volume) >=
	    (int)size) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				    "run_dir '%s' is too long for image paths",
				    hsm->settings.run_dir);
	}
	return 0;
}

/* mkdir -p with mode 0755: qemu's user must traverse to the links. */
static int mkdir_p(const char *path, struct pk_error *err)
{
	char buf[HSM_PATH_MAX];
	int e;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0') {
			continue;
		}
		char c = *p;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST) {
			e = errno;
			return pk_error_set(err, PK_E_IO, e, "cannot create directory '%s': %s", buf,
					    strerror(e));
		}
		*p = c;
		if (!c) {
			break;
		}
	}
	return 0;
}

/* The UUID-named entries of an image dir (heap strings); 0 entries when the
 * dir does not exist. */
static int image_links(const char *dir, char ***ret, size_t *ret_n, struct pk_error *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct pk_strv names = PK_STRV_INIT;
	int e;

	if (!d) {
		e = errno;
		if (e == ENOENT) {
			*ret = NULL;
			*ret_n = 0;
			return 0;
		}
		return pk_error_set(err, PK_E_IO, e, "cannot read '%s': %s", dir, strerror(e));
	}
	while ((de = readdir(d))) {
		if (!pk_uuid_valid(de->d_name)) {
			continue;
		}
		pk_strv_push(&names, de->d_name);
	}
	closedir(d);
	*ret = pk_strv_steal(&names, ret_n);
	return 0;
}

bool hsm_image_is_prepared(const struct hsm *hsm, const char *domain, const char *image)
{
	char dir[HSM_PATH_MAX];
	char **names = NULL;
	size_t n = 0;

	if (image_dir(hsm, domain, image, dir, sizeof(dir), NULL) < 0 ||
	    image_links(dir, &names, &n, NULL) < 0) {
		return false;
	}
	pk_strv_free(names);
	return n > 0;
}

/* ---- metadata ------------------------------------------------------------------ */

void hsm_volume_list_release(struct hsm_volume_list *list)
{
	if (list) {
		free(list->v);
		memset(list, 0, sizeof(*list));
	}
}

const struct hsm_volume *hsm_volume_list_find(const struct hsm_volume_list *list,
					      const char *id)
{
	for (size_t i = 0; i < list->n; i++) {
		if (!strcmp(list->v[i].id, id)) {
			return &list->v[i];
		}
	}
	return NULL;
}

void hsm_chain_release(struct hsm_chain *chain)
{
	if (chain) {
		free(chain->v);
		memset(chain, 0, sizeof(*chain));
	}
}

int hsm_volumes_read(struct hsm *hsm, const char *domain, struct hsm_volume_list *ret,
		     struct pk_error *err)
{
	struct pk_lvm_lv_list lvs = { 0 };
	struct hsm_volume_list list = { 0 };
	int r;

	r = pk_lvm_lv_report(hsm->lvm, domain, NULL, &lvs, err);
	if (r < 0) {
		if (err && err->code == PK_E_NOT_FOUND) {
			pk_error_prefix(err, "storage domain '%s' is not visible on this host",
					domain);
		}
		return r;
	}
	list.v = pk_xcalloc(lvs.count + 1, sizeof(*list.v));
	for (size_t i = 0; i < lvs.count; i++) {
		const struct pk_lvm_lv *lv = &lvs.lvs[i];
		struct hsm_volume *v = &list.v[list.n];

		if (!pk_meta_lv_is_volume(lv->name) ||
		    pk_meta_volume_decode(lv->name, lv->tags, &v->meta, NULL) < 0) {
			continue; /* not a volume, or metadata we cannot trust */
		}
		memcpy(v->id, lv->name, PK_UUID_BUFLEN); /* a volume name is a UUID */
		v->lv_size = lv->size;
		list.n++;
	}
	pk_lvm_lv_list_release(&lvs);
	*ret = list;
	return 0;
}

int hsm_chain_build(const struct hsm_volume_list *list, const char *domain, const char *image,
		    const char *leaf_id, struct hsm_chain *ret, struct pk_error *err)
{
	struct pk_volchain_item *items = pk_xcalloc(list->n + 1, sizeof(*items));
	size_t *idx = pk_xcalloc(list->n + 1, sizeof(*idx));
	struct hsm_chain c = { 0 };
	size_t len = 0;
	int r;

	/* One rule for spmd and hsmd: common/volchain.h. */
	for (size_t i = 0; i < list->n; i++) {
		items[i].id = list->v[i].id;
		items[i].meta = &list->v[i].meta;
	}
	r = pk_volchain_build(items, list->n, domain, image, leaf_id, idx, &len, err);
	if (r == 0) {
		c.v = pk_xcalloc(len + 1, sizeof(*c.v));
		for (size_t k = 0; k < len; k++) {
			c.v[c.n++] = list->v[idx[k]];
		}
		*ret = c;
	}
	free(items);
	free(idx);
	return r;
}

int hsm_image_chain_read(struct hsm *hsm, const char *domain, const char *image,
			 const char *leaf, struct hsm_chain *ret, struct pk_error *err)
{
	struct hsm_volume_list list = { 0 };
	int r = hsm_volumes_read(hsm, domain, &list, err);

	if (r == 0) {
		r = hsm_chain_build(&list, domain, image, leaf, ret, err);
	}
	hsm_volume_list_release(&list);
	return r;
}

/* ---- links ---------------------------------------------------------------------- */

/* buf = "<dir>/<prefix><name><suffix>"; false when it does not fit. */
static bool path_join(char *buf, size_t size, const char *dir, const char *prefix,
		      const char *name, const char *suffix)
{
	int n = snprintf(buf, size, "%s/%s%s%s", dir, prefix, name, suffix);

	return n >= 0 && (size_t)n < size;
}

/* Points link at target, replacing whatever is there (atomically). */
static int link_publish(const char *dir, const char *volume, const char *target,
			struct pk_error *err)
{
	char link[HSM_PATH_MAX], tmp[HSM_PATH_MAX], cur[HSM_PATH_MAX];
	ssize_t n;
	int e;

	if (!path_join(link, sizeof(link), dir, "", volume, "") ||
	    !path_join(tmp, sizeof(tmp), dir, ".", volume, ".tmp")) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				    "image directory '%s' is too long", dir);
	}
	n = readlink(link, cur, sizeof(cur) - 1);
	if (n >= 0) {
		cur[n] = '\0';
		if (!strcmp(cur, target)) {
			return 0;
		}
	}
	unlink(tmp);
	if (symlink(target, tmp) < 0 || rename(tmp, link) < 0) {
		e = errno;
		unlink(tmp);
		return pk_error_set(err, PK_E_IO, e, "cannot publish link '%s' -> '%s': %s", link,
				    target, strerror(e));
	}
	return 0;
}

static void link_remove(const char *dir, const char *volume)
{
	char link[HSM_PATH_MAX];

	if (path_join(link, sizeof(link), dir, "", volume, "") && unlink(link) < 0 &&
	    errno != ENOENT) {
		pk_log_warn("cannot remove link '%s': %s", link, strerror(errno));
	}
}

static bool link_exists(const char *dir, const char *volume)
{
	char link[HSM_PATH_MAX];
	struct stat st;

	return path_join(link, sizeof(link), dir, "", volume, "") && lstat(link, &st) == 0;
}

/* Removes the image dir and its domain dir when they are empty. */
static void dirs_prune(const struct hsm *hsm, const char *domain, const char *dir)
{
	char ddir[HSM_PATH_MAX];

	if (rmdir(dir) < 0 && errno != ENOENT && errno != ENOTEMPTY) {
		pk_log_warn("cannot remove '%s': %s", dir, strerror(errno));
	}
	if (path_join(ddir, sizeof(ddir), hsm->storage_dir, "", domain, "")) {
		rmdir(ddir); /* fails while other images of the domain are prepared */
	}
}

/* Activates one LV for qemu and publishes its link. */
static int volume_activate(struct hsm *hsm, const char *domain, const char *dir,
			   const char *volume, struct pk_error *err)
{
	char path[HSM_PATH_MAX];
	int r, e;

	r = pk_activation_activate(hsm->act, domain, volume, err);
	if (r == 0) {
		r = pk_activation_path(hsm->act, domain, volume, path, sizeof(path), err);
	}
	if (r < 0) {
		return r;
	}
	if (hsm->chown_volumes &&
	    (chown(path, hsm->qemu_uid, hsm->qemu_gid) < 0 || chmod(path, VOLUME_MODE) < 0)) {
		e = errno;
		r = pk_error_set(err, PK_E_IO, e,
				 "cannot give LV '%s' to qemu's user (uid %u gid %u): %s", path,
				 (unsigned)hsm->qemu_uid, (unsigned)hsm->qemu_gid, strerror(e));
		return r;
	}
	return link_publish(dir, volume, path, err);
}

static int volume_deactivate(struct hsm *hsm, const char *domain, const char *dir,
			     const char *volume, struct pk_error *err)
{
	int r = pk_activation_deactivate(hsm->act, domain, volume, err);

	if (r == 0) {
		link_remove(dir, volume);
	}
	return r;
}

/*
 * Before anything is activated: the SPM records every volume of the chain
 * as prepared on this host, so none can be deleted under a VM. A failure
 * stops the prepare (the tags recorded so far stay: they only protect).
 */
static int notify_prepared(struct hsm *hsm, const char *domain, const char *image,
			   const struct hsm_chain *chain, struct pk_error *err)
{
	for (size_t i = 0; i < chain->n; i++) {
		int r = hsm_spm_image_prepared(hsm, domain, image, chain->v[i].id, true, err);

		if (r < 0) {
			pk_error_prefix(err, "the SPM cannot record that volume '%s' of image '%s' "
					"is prepared on this host (it would not be protected from "
					"deletion); nothing prepared", chain->v[i].id, image);
			return r;
		}
	}
	return 0;
}

/* After a teardown (volume NULL: the whole image) or a volume dropped from
 * the chain: a tag left behind only protects, so a failure is logged. */
static void notify_torn_down(struct hsm *hsm, const char *domain, const char *image,
			     const char *volume)
{
	struct pk_error err = { PK_OK, "" };

	if (hsm_spm_image_prepared(hsm, domain, image, volume, false, &err) < 0) {
		pk_log_warn("could not tell the SPM that image='%s'%s%s is torn down on this host "
			    "(it stays protected from deletion until a teardown reaches the SPM): "
			    "%s", image, volume ? " volume=" : "", volume ? volume : "", err.message);
	}
}

/* ---- prepare / teardown / refresh ------------------------------------------------- */

/* The start of every image verb: ids checked, the image's link dir in dir,
 * the image's lock held (in set; released by image_verb_end). */
static int image_verb_begin(struct hsm *hsm, const char *domain, const char *image,
			    const char *volume, const char *verb, struct pk_lockset *set,
			    char dir[HSM_PATH_MAX], struct pk_error *err)
{
	int r;

	r = pk_uuid_check_ids(domain, image, volume, err);
	if (r == 0) {
		r = image_dir(hsm, domain, image, dir, HSM_PATH_MAX, err);
	}
	if (r < 0) {
		return r;
	}
	pk_lockset_init(set, hsm->locks, verb);
	hsm_lockset_add_image(set, domain, image);
	return pk_lockset_acquire(set, hsm->settings.lock_timeout_ms, err);
}

static void image_verb_end(struct pk_lockset *set)
{
	pk_lockset_release(set);
}

static bool chain_has(const struct hsm_chain *c, const char *id)
{
	for (size_t i = 0; i < c->n; i++) {
		if (!strcmp(c->v[i].id, id)) {
			return true;
		}
	}
	return false;
}

static int prepare_check(struct hsm *hsm, const char *domain, const char *image,
			 const struct hsm_chain *chain, char **linked, size_t nlinked,
			 struct pk_error *err)
{
	char vm[HSM_VM_NAME_MAX + 1];
	int r;

	for (size_t i = 0; i < chain->n; i++) {
		const struct hsm_volume *v = &chain->v[i];
		if (v->meta.legality != PK_VOLUME_LEGAL) {
			return pk_error_set(err, PK_E_ILLEGAL, EINVAL,
					    "volume '%s' of image '%s' is %s; an image with such a "
					    "volume cannot be prepared", v->id, image,
					    pk_volume_legality_name(v->meta.legality));
		}
	}
	for (size_t i = 0; i < nlinked; i++) {
		if (chain_has(chain, linked[i])) {
			continue;
		}
		r = hsm_vm_volume_user(hsm, domain, image, linked[i], vm, err);
		if (r < 0) {
			return r;
		}
		if (r > 0) {
			return pk_error_set(err, PK_E_IN_USE, EBUSY,
					    "volume '%s' of image '%s' is prepared here and VM '%s' "
					    "uses it, but it is not in the chain asked for; prepare "
					    "the chain the VM runs on", linked[i], image, vm);
		}
	}
	return 0;
}

int hsm_image_prepare(struct hsm *hsm, const char *domain, const char *image,
		      const char *volume, struct hsm_chain *ret, struct pk_error *err)
{
	struct hsm_chain chain = { 0 };
	struct pk_lockset set;
	char dir[HSM_PATH_MAX];
	char **linked = NULL;
	size_t nlinked = 0, done = 0;
	bool *was_linked = NULL;
	int r;

	if (volume && !*volume) {
		volume = NULL;
	}
	r = image_verb_begin(hsm, domain, image, volume, "PrepareImage", &set, dir, err);
	if (r < 0) {
		return r;
	}
	r = hsm_image_chain_read(hsm, domain, image, volume, &chain, err);
	if (r == 0) {
		r = image_links(dir, &linked, &nlinked, err);
	}
	if (r == 0) {
		r = prepare_check(hsm, domain, image, &chain, linked, nlinked, err);
	}
	if (r == 0) {
		r = mkdir_p(dir, err);
	}
	if (r == 0) {
		r = notify_prepared(hsm, domain, image, &chain, err);
	}
	if (r < 0) {
		goto out;
	}
	/* Base first: a parent is reachable before the child that names it. */
	was_linked = pk_xcalloc(chain.n + 1, sizeof(bool));
	for (size_t k = chain.n; k-- > 0; done++) {
		was_linked[k] = link_exists(dir, chain.v[k].id);
		r = volume_activate(hsm, domain, dir, chain.v[k].id, err);
		if (r < 0) {
			pk_error_prefix(err, "cannot prepare volume '%s' of image '%s'",
					chain.v[k].id, image);
			goto fail;
		}
	}
	for (size_t i = 0; i < nlinked; i++) {
		struct pk_error e2;
		if (chain_has(&chain, linked[i])) {
			continue;
		}
		if (volume_deactivate(hsm, domain, dir, linked[i], &e2) < 0) {
			pk_log_warn("dropping volume='%s' of image='%s' from this host: %s (its link "
				    "is removed; the LV stays active)", linked[i], image, e2.message);
			link_remove(dir, linked[i]);
		} else {
			pk_log_info("volume no longer prepared domain='%s' image='%s' volume='%s'",
				    domain, image, linked[i]);
			notify_torn_down(hsm, domain, image, linked[i]);
		}
	}
	pk_log_info("image prepared domain='%s' image='%s' leaf='%s' volumes=%zu", domain, image,
		    chain.v[0].id, chain.n);
	goto out;
fail:
	/* Undo what this call added, in reverse. */
	for (size_t k = chain.n - done - 1; k < chain.n; k++) {
		struct pk_error e2;
		if (!was_linked[k] && volume_deactivate(hsm, domain, dir, chain.v[k].id, &e2) < 0) {
			pk_log_warn("undo of prepare volume='%s': %s", chain.v[k].id, e2.message);
		}
	}
	if (nlinked == 0) {
		dirs_prune(hsm, domain, dir);
	}
out:
	image_verb_end(&set);
	free(was_linked);
	pk_strv_free(linked);
	if (r == 0) {
		*ret = chain;
	} else {
		hsm_chain_release(&chain);
	}
	return r;
}

int hsm_image_teardown(struct hsm *hsm, const char *domain, const char *image, bool force,
		       struct pk_error *err)
{
	struct pk_lockset set;
	char dir[HSM_PATH_MAX];
	char vm[HSM_VM_NAME_MAX + 1], target[HSM_VMXML_TARGET_MAX];
	struct hsm_chain chain = { 0 };
	char **linked = NULL;
	size_t nlinked = 0;
	int r;

	r = image_verb_begin(hsm, domain, image, NULL, "TeardownImage", &set, dir, err);
	if (r < 0) {
		return r;
	}
	r = image_links(dir, &linked, &nlinked, err);
	if (r == 0 && !force) {
		r = hsm_vm_image_user(hsm, domain, image, vm, target, err);
		if (r > 0) {
			r = pk_error_set(err, PK_E_IN_USE, EBUSY,
					 "image '%s' is used by VM '%s' (drive %s); destroy the VM "
					 "first, or pass force", image, vm, target);
		}
	}
	if (r < 0 || nlinked == 0) {
		goto out;
	}
	/* Leaf first when the metadata still knows the chain: a child goes
	 * before the parent it reads. Volumes outside the chain come last. */
	if (hsm_image_chain_read(hsm, domain, image, NULL, &chain, NULL) == 0) {
		for (size_t i = 0; i < chain.n; i++) {
			for (size_t k = i; k < nlinked; k++) {
				if (!strcmp(linked[k], chain.v[i].id)) {
					char *t = linked[k];
					memmove(&linked[i + 1], &linked[i], (k - i) * sizeof(char *));
					linked[i] = t;
					break;
				}
			}
		}
	}
	for (size_t i = 0; i < nlinked; i++) {
		struct pk_error e2 = { PK_OK, "" };

		if (volume_deactivate(hsm, domain, dir, linked[i], &e2) == 0) {
			continue;
		}
		if (!force) {
			r = pk_error_set(err, e2.code, pk_errc_errno(e2.code),
					 "cannot tear down volume '%s' of image '%s': %s", linked[i],
					 image, e2.message);
			goto out;
		}
		pk_log_warn("teardown (forced) image='%s' volume='%s': %s; its link is removed, "
			    "the LV stays active", image, linked[i], e2.message);
		link_remove(dir, linked[i]);
	}
	dirs_prune(hsm, domain, dir);
	pk_log_info("image torn down domain='%s' image='%s' volumes=%zu%s", domain, image, nlinked,
		    force ? " (forced)" : "");
out:
	/* Still under the image's lock: in order with the next prepare's notices. */
	if (r == 0) {
		notify_torn_down(hsm, domain, image, NULL);
	}
	image_verb_end(&set);
	hsm_chain_release(&chain);
	pk_strv_free(linked);
	return r;
}

int hsm_volume_refresh(struct hsm *hsm, const char *domain, const char *image,
		       const char *volume, uint64_t *ret_lv_size, struct pk_error *err)
{
	struct pk_lockset set;
	char dir[HSM_PATH_MAX];
	struct pk_lvm_lv_list lvs = { 0 };
	struct pk_volume_meta meta;
	int r;

	r = image_verb_begin(hsm, domain, image, volume, "RefreshVolume", &set, dir, err);
	if (r < 0) {
		return r;
	}
	r = pk_lvm_lv_report(hsm->lvm, domain, volume, &lvs, err);
	if (r == 0 && lvs.count != 1) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "volume '%s' not found in domain '%s'",
				 volume, domain);
	}
	if (r == 0) {
		r = pk_meta_volume_decode(volume, lvs.lvs[0].tags, &meta, err);
	}
	if (r == 0 && strcmp(meta.image, image) != 0) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "volume '%s' belongs to image '%s', not to image '%s'", volume,
				 meta.image, image);
	}
	if (r == 0 && !link_exists(dir, volume)) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
				 "volume '%s' of image '%s' is not prepared on host %d; prepare "
				 "the image first", volume, image, hsm->info.host_id);
	}
	if (r == 0) {
		r = pk_activation_refresh(hsm->act, domain, volume, err);
	}
	if (r == 0) {
		pk_log_info("volume refreshed domain='%s' image='%s' volume='%s' lv_size=%llu",
			    domain, image, volume, (unsigned long long)lvs.lvs[0].size);
		if (ret_lv_size) {
			*ret_lv_size = lvs.lvs[0].size;
		}
	}
	pk_lvm_lv_list_release(&lvs);
	image_verb_end(&set);
	return r;
}

int hsm_image_volume_ready(struct hsm *hsm, const char *domain, const char *image,
			   const char *volume, bool *ret_block, struct pk_error *err)
{
	char link[HSM_PATH_MAX], want[HSM_PATH_MAX], cur[HSM_PATH_MAX];
	struct stat st;
	ssize_t n;
	int r, e;

	r = hsm_image_link_path(hsm, domain, image, volume, link, sizeof(link), err);
	if (r == 0) {
		r = pk_activation_path(hsm->act, domain, volume, want, sizeof(want), err);
	}
	if (r < 0) {
		return r;
	}
	n = readlink(link, cur, sizeof(cur) - 1);
	if (n < 0) {
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
				    "image '%s' is not prepared on host %d with volume '%s'; "
				    "run PrepareImage first", image, hsm->info.host_id, volume);
	}
	cur[n] = '\0';
	if (strcmp(cur, want) != 0) {
		return pk_error_set(err, PK_E_ILLEGAL, EINVAL,
				    "link '%s' points to '%s', not to the LV '%s'; prepare the "
				    "image again", link, cur, want);
	}
	if (stat(link, &st) < 0) {
		e = errno;
		return pk_error_set(err, PK_E_UNAVAILABLE, e,
				    "volume '%s' is prepared but its LV '%s' is not reachable: %s; "
				    "prepare the image again", volume, want, strerror(e));
	}
	if (ret_block) {
		*ret_block = S_ISBLK(st.st_mode);
	}
	return 0;
}
