/*
 * spm_domain — block storage domains: a VG on shared PVs, tagged as a
 * poolkeeper domain, with the special LVs `ids` (sanlock lockspace) and
 * `leases` (sanlock resources; the SPM lease "SDM").
 *
 * CreateDomain is the one mutation that needs no SPM lease (the lease lives
 * inside the domain it creates). It is restartable: the VG is created with
 * the tag PK_INITIALIZING=1, then the special LVs are made and formatted,
 * and only then is the tag dropped; a CreateDomain repeated with the same
 * id and PVs resumes an interrupted one. An initializing domain cannot be
 * used (SpmStart refuses it).
 */
#ifndef SPM_DOMAIN_H
#define SPM_DOMAIN_H

#include <stddef.h>
#include <stdint.h>

#include "common/meta.h"
#include "spm/spm.h"

#define SPM_DOMAIN_MAX_PVS 32

struct spm_domain_info {
	char domain[PK_UUID_BUFLEN];
	char vg[PK_LVM_NAME_MAX];
	unsigned version;
	uint64_t size, free, extent_size;
	size_t npvs;
	char pvs[SPM_DOMAIN_MAX_PVS][PK_LVM_PATH_MAX];
	unsigned volume_count;
	char description[PK_META_DESC_MAX + 1];
	bool initializing;
};

/* domain "" or NULL: a new id is generated. */
int spm_domain_create(struct spm *spm, const char *domain, const char *const *pvs, size_t npvs,
		      const char *description, struct spm_domain_info *ret, struct pk_error *err);

int spm_domain_info(struct spm *spm, const char *domain, struct spm_domain_info *ret,
		    struct pk_error *err);

#endif
