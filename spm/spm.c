#include "spm/spm.h"

#include <string.h>


int spm_init(struct spm *spm, const struct pk_config *cfg, struct pk_error *err)
{
	(void)err;
	memset(spm, 0, sizeof(*spm));
	spm->cfg = cfg;
	spm->info.role = "spm";
	spm->info.host_id = (int32_t)pk_config_int(cfg, "host_id");
	spm->info.start_ms = pk_codec_monotonic_ms();
	spm->info.activation = pk_config_str(cfg, "activation");
	return 0;
}

void spm_release(struct spm *spm)
{
	(void)spm;
}
