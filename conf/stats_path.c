/* conf/stats_path.c - whether there is a live statistics file, and the file a statistics path
 * names for a process (config.h): %p becomes the process id. One place for libtcm.so, which
 * writes the files, and tcmctl stats, which finds a running process's live file.
 * Never: allocates or calls a printf-family function (the exit path and the release worker
 * call it). */
#include "config.h"

bool tcm_config_has_live_stats(const struct tcm_config *config)
{
	return config->stats.interval_ms > 0 && tcm_config_path(config, TCM_CONFIG_PATH_STATS_LIVE)[0] != '\0';
}

bool tcm_config_stats_path_of(const char *pattern, uint64_t pid, char *path, size_t size)
{
	size_t length = 0;
	for (const char *at = pattern; *at != '\0'; at++) {
		if (at[0] == '%' && at[1] == 'p') {
			char digits[20];
			size_t count = 0;
			uint64_t rest = pid;
			do
				digits[count++] = (char)('0' + rest % 10);
			while ((rest /= 10) != 0 && count < sizeof digits);
			while (count > 0 && length + 1 < size)
				path[length++] = digits[--count];
			if (count > 0)
				break;
			at++;
		} else if (length + 1 < size) {
			path[length++] = *at;
		} else {
			break;
		}
	}
	if (size > 0)
		path[length < size ? length : size - 1] = '\0';
	return length + 1 < size;
}
