/* tests/unit/conf_schema_test.c - the schema table and the value rules built on it: rows agree
 * with enum tcm_config_key and the environment names, defaults are valid, the environment's
 * spellings parse strictly, did-you-mean finds typos, and the shipped example tcm.conf sets
 * every key to its default (so it documents the defaults truthfully). */
#include "conf_fixture.h"

#include <ctype.h>

#include "schema.h"
#include "validate.h"

#ifndef TCM_CONF_EXAMPLE_PATH
#error "TCM_CONF_EXAMPLE_PATH must name conf/tcm.conf.example"
#endif

static void rows_match_keys_and_env_names(void **state)
{
	(void)state;
	for (int k = 0; k < TCM_CONFIG_KEY_COUNT; k++) {
		const struct tcm_schema_row *row = &tcm_schema[k];
		assert_int_equal(row->key_id, k);
		char name[128], env[128];
		snprintf(name, sizeof name, "%s.%s", row->group, row->key);
		assert_string_equal(row->name, name);
		int len = snprintf(env, sizeof env, "TCM_%s_%s", row->group, row->key);
		for (int i = 0; i < len; i++)
			env[i] = (char)toupper((unsigned char)env[i]);
		assert_string_equal(row->env, env);
		assert_ptr_equal(tcm_schema_find(row->group, row->key), row);
		assert_true(tcm_schema_has_group(row->group));
		assert_non_null(row->doc);
	}
	assert_null(tcm_schema_find("exit", "nothing"));
	assert_false(tcm_schema_has_group("exits"));
}

static void defaults_pass_their_own_rules(void **state)
{
	(void)state;
	struct tcm_validate_value value;
	for (int k = 0; k < TCM_CONFIG_KEY_COUNT; k++) {
		const struct tcm_schema_row *row = &tcm_schema[k];
		if (row->type == TCM_SCHEMA_INT) {
			assert_int_equal(tcm_validate_int(row, row->default_value, &value), 0);
			assert_true(row->unit != NULL && row->multiple_of >= 1);
		} else if (row->type == TCM_SCHEMA_PATH) {
			assert_int_equal(tcm_validate_path(row, "", &value), 0);   /* the default: no file */
		} else if (row->type != TCM_SCHEMA_BOOL) {
			assert_int_equal(tcm_validate_word(row, row->choices[row->default_value], &value), 0);
		}
	}
	assert_true(tcm_schema[TCM_CONFIG_EXIT_MARGIN_MS].default_value <
		    tcm_schema[TCM_CONFIG_EXIT_DEADLINE_MS].default_value);
}

static void env_text_is_parsed_strictly(void **state)
{
	(void)state;
	struct tcm_validate_value value;
	const struct tcm_schema_row *deadline = &tcm_schema[TCM_CONFIG_EXIT_DEADLINE_MS];
	assert_int_equal(tcm_validate_text(deadline, "1500", &value), 0);
	assert_int_equal(value.integer, 1500);
	const char *bad[] = { "", " 12", "+12", "12abc", "1e3", "0x10", "0", "600001",
			      "99999999999999999999", "-1" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(tcm_validate_text(deadline, bad[i], &value), EINVAL);

	const struct tcm_schema_row *chunk = &tcm_schema[TCM_CONFIG_RELEASE_CHUNK_KIB];
	assert_int_equal(tcm_validate_text(chunk, "8", &value), 0);
	assert_int_equal(tcm_validate_text(chunk, "12", &value), EINVAL);

	const struct tcm_schema_row *stopping = &tcm_schema[TCM_CONFIG_NOTIFY_STOPPING];
	const char *truthy[] = { "true", "TRUE", "True", "1" }, *falsy[] = { "false", "False", "0" };
	for (size_t i = 0; i < 4; i++) {
		value.boolean = false;
		assert_int_equal(tcm_validate_text(stopping, truthy[i], &value), 0);
		assert_true(value.boolean);
	}
	for (size_t i = 0; i < 3; i++) {
		value.boolean = true;
		assert_int_equal(tcm_validate_text(stopping, falsy[i], &value), 0);
		assert_false(value.boolean);
	}
	assert_int_equal(tcm_validate_text(stopping, "yes", &value), EINVAL);

	const struct tcm_schema_row *ready = &tcm_schema[TCM_CONFIG_NOTIFY_READY];
	assert_int_equal(tcm_validate_text(ready, "init", &value), 0);
	assert_int_equal(value.choice, TCM_CONFIG_NOTIFY_READY_INIT);
	assert_int_equal(tcm_validate_text(ready, "INIT", &value), EINVAL);
}

static void stats_on_exit_takes_only_absolute_paths(void **state)
{
	(void)state;
	struct tcm_validate_value value;
	const struct tcm_schema_row *row = &tcm_schema[TCM_CONFIG_STATS_ON_EXIT];
	assert_int_equal(tcm_validate_word(row, "stderr", &value), 0);
	assert_int_equal(value.choice, TCM_CONFIG_STATS_TO_STDERR);
	assert_int_equal(tcm_validate_word(row, "/run/tcm/s.json", &value), 0);
	assert_int_equal(value.choice, TCM_CONFIG_STATS_TO_FILE);
	assert_string_equal(value.path, "/run/tcm/s.json");
	assert_int_equal(tcm_validate_word(row, "/var/lib/node_exporter/tcm.prom", &value), 0);
	assert_int_equal(value.choice, TCM_CONFIG_STATS_TO_FILE);
	const char *bad[] = { "s.json", "./s.json", "/run/tcm/.json", "/.json", "/run/s.txt", "json", "",
			      "s.prom", "/run/tcm/.prom", "/run/s.prometheus" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(tcm_validate_word(row, bad[i], &value), EINVAL);
	char long_path[TCM_CONFIG_PATH_MAX + 8];
	memset(long_path, 'a', sizeof long_path);
	long_path[0] = '/';
	strcpy(long_path + TCM_CONFIG_PATH_MAX - 5, ".json");  /* strlen == TCM_CONFIG_PATH_MAX: no room for NUL */
	assert_int_equal(tcm_validate_word(row, long_path, &value), EINVAL);
	strcpy(long_path + TCM_CONFIG_PATH_MAX - 6, ".json");
	assert_int_equal(tcm_validate_word(row, long_path, &value), 0);
}

/* stats.path: "" (none) or an absolute path of a file, %p once at most (nothing else is
 * expanded), short enough that %p and the temporary file's suffix still fit. */
static void stats_path_takes_absolute_paths_with_one_percent_p(void **state)
{
	(void)state;
	struct tcm_validate_value value;
	const struct tcm_schema_row *row = &tcm_schema[TCM_CONFIG_STATS_PATH];
	const char *good[] = { "", "/run/tcm/stats.json", "/var/lib/node_exporter/tcm.%p.prom", "/tmp/s" };
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		assert_int_equal(tcm_validate_path(row, good[i], &value), 0);
		assert_string_equal(value.path, good[i]);
	}
	const char *bad[] = { "stats.json", "./s", "/run/tcm/", "/run/%d.json", "/run/%p.%p", "/run/100%", "/run/%" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(tcm_validate_path(row, bad[i], &value), EINVAL);
	char long_path[TCM_CONFIG_PATH_MAX];
	memset(long_path, 'a', sizeof long_path);
	long_path[0] = '/';
	long_path[TCM_CONFIG_PATH_MAX - 32] = '\0';   /* no room left for %p and ".tmp.<pid>" */
	assert_int_equal(tcm_validate_path(row, long_path, &value), EINVAL);
	long_path[TCM_CONFIG_PATH_MAX - 33] = '\0';
	assert_int_equal(tcm_validate_path(row, long_path, &value), 0);
}

/* %p becomes the pid wherever it stands; a path that does not fit is said so, never handed out
 * as if whole. */
static void stats_path_names_the_process_file(void **state)
{
	(void)state;
	char path[64];
	assert_true(tcm_config_stats_path_of("/run/tcm.%p.prom", 4242, path, sizeof path));
	assert_string_equal(path, "/run/tcm.4242.prom");
	assert_true(tcm_config_stats_path_of("/run/%p/x%p", 7, path, sizeof path));
	assert_string_equal(path, "/run/7/x7");
	assert_true(tcm_config_stats_path_of("/run/s.json", 0, path, sizeof path));
	assert_string_equal(path, "/run/s.json");
	char small[12];
	assert_false(tcm_config_stats_path_of("/run/tcm.%p.prom", 4242, small, sizeof small));
	assert_int_equal(strlen(small), sizeof small - 1);
	assert_false(tcm_config_stats_path_of("/run/%p", 1234567, small, 10));
}

static void suggest_finds_typos_and_bare_keys(void **state)
{
	(void)state;
	struct { const char *typo, *meant; } cases[] = {
		{ "exit.dedline_ms", "exit.deadline_ms" },
		{ "exit.deadline", "exit.deadline_ms" },
		{ "exits.margin_ms", "exit.margin_ms" },
		{ "cache.thread_max_kb", "cache.thread_max_kib" },
		{ "release.chunk_kib", "release.chunk_kib" },
		{ "chunk_kib", "release.chunk_kib" },
		{ "onexit", "stats.on_exit" },
		{ "notify.ready", "notify.ready" },
		{ "release.deadline_ms", "exit.deadline_ms" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct tcm_schema_row *row = tcm_validate_suggest(cases[i].typo);
		assert_non_null(row);
		assert_string_equal(row->name, cases[i].meant);
	}
	assert_null(tcm_validate_suggest("logging.level"));
	assert_null(tcm_validate_suggest("x"));
	char very_long[200];
	memset(very_long, 'e', sizeof very_long - 1);
	very_long[sizeof very_long - 1] = '\0';
	assert_null(tcm_validate_suggest(very_long));
}

static void expected_wording_per_type(void **state)
{
	(void)state;
	char text[256];
	tcm_validate_expected(&tcm_schema[TCM_CONFIG_CACHE_TOTAL_MAX_MIB], text, sizeof text);
	assert_string_equal(text, "an integer from 1 to 1048576 (MiB)");
	tcm_validate_expected(&tcm_schema[TCM_CONFIG_RELEASE_CHUNK_KIB], text, sizeof text);
	assert_string_equal(text, "a multiple of 8 from 8 to 1048576 (KiB)");
	tcm_validate_expected(&tcm_schema[TCM_CONFIG_NOTIFY_STATUS], text, sizeof text);
	assert_string_equal(text, "true or false");
	tcm_validate_expected(&tcm_schema[TCM_CONFIG_NOTIFY_READY], text, sizeof text);
	assert_string_equal(text, "\"off\" or \"init\"");
	tcm_validate_expected(&tcm_schema[TCM_CONFIG_STATS_ON_EXIT], text, sizeof text);
	assert_string_equal(text, "\"off\", \"stderr\" or an absolute path ending in .json or .prom");
}

static void example_file_sets_every_key_to_its_default(void **state)
{
	(void)state;
	struct tcm_config defaults, example;
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&defaults, &sources), 0);
	sources.file = TCM_CONF_EXAMPLE_PATH;
	assert_int_equal(tcm_config_load(&example, &sources), 0);
	assert_int_equal(fake_error_count, 0);
	for (int k = 0; k < TCM_CONFIG_KEY_COUNT; k++) {
		assert_int_equal(example.origin[k].source, TCM_CONFIG_FROM_FILE);
		assert_int_equal(defaults.origin[k].source, TCM_CONFIG_FROM_DEFAULT);
	}
	/* same values, key by key: a path is compared as the string it is */
	for (int k = 0; k < TCM_CONFIG_KEY_COUNT; k++) {
		const struct tcm_schema_row *row = &tcm_schema[k];
		const char *in_example = (const char *)&example + row->offset;
		const char *in_defaults = (const char *)&defaults + row->offset;
		switch (row->type) {
		case TCM_SCHEMA_INT:
			assert_memory_equal(in_example, in_defaults, sizeof(int64_t));
			break;
		case TCM_SCHEMA_BOOL:
			assert_memory_equal(in_example, in_defaults, sizeof(bool));
			break;
		case TCM_SCHEMA_CHOICE:
		case TCM_SCHEMA_STATS_OUTPUT:
			assert_memory_equal(in_example, in_defaults, sizeof(int));
			break;
		case TCM_SCHEMA_PATH:
			assert_string_equal(tcm_config_path(&example, row->path),
					    tcm_config_path(&defaults, row->path));
			break;
		}
	}
	assert_string_equal(tcm_config_path(&example, TCM_CONFIG_PATH_STATS_ON_EXIT),
			    tcm_config_path(&defaults, TCM_CONFIG_PATH_STATS_ON_EXIT));
}

/* A fresh configuration writes its values and the first byte of the paths' text, and nothing
 * after it: the 12 KiB of path slots would otherwise be pages written in every process's
 * start-up (issue 12; before the paths shared one text, a path's first byte was on each page). */
static void defaults_write_nothing_past_the_first_byte_of_the_paths(void **state)
{
	(void)state;
	static struct tcm_config config;
	memset(&config, 0xa5, sizeof config);
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 0);
	for (int path = 0; path < TCM_CONFIG_PATH_COUNT; path++)
		assert_string_equal(tcm_config_path(&config, (enum tcm_config_path)path), "");
	const unsigned char *bytes = (const unsigned char *)&config;
	for (size_t byte = offsetof(struct tcm_config, path_text) + 1; byte < sizeof config; byte++)
		assert_int_equal(bytes[byte], 0xa5);
}

/* Each path has its own slot: setting one leaves the others, "" unsets, and a path as long as
 * a path may be (TCM_CONFIG_PATH_MAX - 1 bytes) is kept whole. */
static void set_path_keeps_each_path_apart(void **state)
{
	(void)state;
	static struct tcm_config config;
	tcm_schema_defaults(&config);
	tcm_config_set_path(&config, TCM_CONFIG_PATH_STATS_LIVE, "/run/live.%p.json");
	tcm_config_set_path(&config, TCM_CONFIG_PATH_FILE, "/etc/tcm.conf");
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_STATS_LIVE), "/run/live.%p.json");
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_FILE), "/etc/tcm.conf");
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_STATS_ON_EXIT), "");
	tcm_config_set_path(&config, TCM_CONFIG_PATH_STATS_LIVE, "/x.prom");
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_STATS_LIVE), "/x.prom");
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_FILE), "/etc/tcm.conf");
	tcm_config_set_path(&config, TCM_CONFIG_PATH_FILE, "");
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_FILE), "");
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_STATS_LIVE), "/x.prom");

	static char longest[TCM_CONFIG_PATH_MAX];
	memset(longest, 'a', sizeof longest - 1);
	longest[0] = '/';
	for (int path = 0; path < TCM_CONFIG_PATH_COUNT; path++)
		tcm_config_set_path(&config, (enum tcm_config_path)path, longest);
	for (int path = 0; path < TCM_CONFIG_PATH_COUNT; path++)
		assert_string_equal(tcm_config_path(&config, (enum tcm_config_path)path), longest);
}

#define CONF_TEST(name) cmocka_unit_test_teardown(name, fake_reset)
static const struct CMUnitTest tests[] = {
	CONF_TEST(rows_match_keys_and_env_names),
	CONF_TEST(defaults_pass_their_own_rules),
	CONF_TEST(env_text_is_parsed_strictly),
	CONF_TEST(stats_on_exit_takes_only_absolute_paths),
	CONF_TEST(suggest_finds_typos_and_bare_keys),
	CONF_TEST(expected_wording_per_type),
	CONF_TEST(example_file_sets_every_key_to_its_default),
	CONF_TEST(defaults_write_nothing_past_the_first_byte_of_the_paths),
	CONF_TEST(set_path_keeps_each_path_apart),
	CONF_TEST(stats_path_takes_absolute_paths_with_one_percent_p),
	CONF_TEST(stats_path_names_the_process_file),
};

UNIT_MAIN("conf_schema", tests)
