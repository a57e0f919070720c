/*
 * hsm_vm — the VMs of this host, through libvirt (hsm/virt.h) and our
 * domain XML (hsm/vmxml.h).
 *
 * A VM is a persistent libvirt domain carrying our <metadata>: one drive
 * identity (target, domain, image, current leaf volume) per disk. Nothing
 * about VMs is kept in hsmd's memory; every call reads libvirt, so a
 * restarted hsmd or a reconnection to a restarted libvirtd needs no
 * reconcile.
 *
 * Disks are opened by libvirt at the image links of hsm/image.h; the live
 * chain of a drive is the list of volume ids read from the live XML
 * (leaf first). A layer whose path is not a volume link is reported by its
 * path, so a comparison with the metadata chain fails visibly.
 *
 * Outputs are owned by the caller (hsm_vm_info_release / hsm_vm_infos_free).
 */
#ifndef HSM_VM_H
#define HSM_VM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "hsm/hsm.h"
#include "hsm/vmxml.h"

struct hsm_drive_info {
	struct hsm_drive_id id; /* id.volume_id: the current leaf */
	char **live_chain;      /* leaf first, NULL-terminated (common/strv.h) */
	size_t nlive;
};

struct hsm_vm_info {
	char name[HSM_VM_NAME_MAX + 1];
	char uuid[PK_UUID_BUFLEN];
	enum hsm_virt_state state;
	int state_reason;       /* libvirt's reason for state */
	char waiting[512];      /* the drive monitor's wait (hsm_thinp_vm_status), "" none */
	enum hsm_vm_type type;  /* 0 when libvirt reports another type */
	struct hsm_drive_info *drives; /* heap, in metadata order */
	size_t ndrives;
};

void hsm_vm_info_release(struct hsm_vm_info *info);
void hsm_vm_infos_free(struct hsm_vm_info *infos, size_t n);

/* The drive of info with that target, or NULL. */
const struct hsm_drive_info *hsm_vm_info_drive(const struct hsm_vm_info *info,
					       const char *target);

/* VmSpec type: AUTO follows the setting domain_type (and /dev/kvm). */
enum hsm_vm_type_request {
	HSM_VM_TYPE_AUTO = 0,
	HSM_VM_TYPE_WANT_KVM = 1,
	HSM_VM_TYPE_WANT_QEMU = 2,
};

struct hsm_vm_create_disk {
	const char *domain;
	const char *image;
	const char *volume; /* the image's leaf, prepared here */
	const char *bus;    /* NULL/"": virtio; "sata", "scsi" */
	const char *target; /* NULL/"": next free name of the bus */
};

/* Strings borrowed for the call; optional ones NULL or "". */
struct hsm_vm_create_spec {
	const char *name;
	unsigned memory_mib;
	unsigned vcpus;
	const struct hsm_vm_create_disk *disks;
	size_t ndisks;
	/* Names of files in the boot directory (setting boot_dir), resolved
	 * by hsm/vmfiles.h; never host paths. The serial log is not chosen
	 * by the caller: <log_dir>/<name>.serial when log_dir is set. */
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	enum hsm_vm_type_request type;
};

/*
 * Defines and starts a VM. Each disk's image must be prepared here with the
 * given volume as its leaf (metadata leaf, LEGAL, link reachable), used by
 * no other VM of this host and given once. Fails with ALREADY_EXISTS for a
 * name in use, NOT_FOUND for an image not prepared here, INVALID_ARGUMENT
 * for a volume that is not the image's leaf or belongs to another image,
 * IN_USE for an image another VM uses, INVALID_ARGUMENT for a kernel or
 * initrd that is not a regular file inside the boot directory. *ret may
 * be NULL.
 */
int hsm_vm_create(struct hsm *hsm, const struct hsm_vm_create_spec *spec,
		  struct hsm_vm_info *ret, struct pk_error *err);

/* Powers the VM off and removes its definition; the images stay prepared.
 * NOT_FOUND for an unknown VM (or one that is not poolkeeper's). */
int hsm_vm_destroy(struct hsm *hsm, const char *name, struct pk_error *err);

/* One VM (NOT_FOUND when unknown or not poolkeeper's). */
int hsm_vm_get(struct hsm *hsm, const char *name, struct hsm_vm_info *ret,
	       struct pk_error *err);

/* name NULL/"": every VM of poolkeeper on this host, sorted by name. */
int hsm_vm_list(struct hsm *hsm, const char *name, struct hsm_vm_info **ret, size_t *ret_n,
		struct pk_error *err);

/*
 * Which VM of this host uses an image (any drive on it, running or not):
 * 1 and the VM's name and drive target (each may be NULL), 0 when none.
 */
int hsm_vm_image_user(struct hsm *hsm, const char *domain, const char *image,
		      char ret_vm[HSM_VM_NAME_MAX + 1], char ret_target[HSM_VMXML_TARGET_MAX],
		      struct pk_error *err);

/* Like hsm_vm_image_user, for one volume in any drive's live chain (or its
 * metadata leaf). */
int hsm_vm_volume_user(struct hsm *hsm, const char *domain, const char *image,
		       const char *volume, char ret_vm[HSM_VM_NAME_MAX + 1],
		       struct pk_error *err);

/*
 * The volume ids of a parsed disk's chain, leaf first (a common/strv.h
 * array: free with pk_strv_free). A layer whose file name is not a volume
 * id keeps its path.
 */
int hsm_vm_disk_chain(const struct hsm_vmxml_disk *disk, char ***ret, size_t *ret_n);

/* The volume id a path names (its last component when that is a UUID),
 * else the path itself. Heap string. */
char *hsm_path_volume_id(const char *path);

#endif
