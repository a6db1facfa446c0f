/* tests/unit/conf_load_test.c - tcm_config_load: lookup order and precedence, each error kind
 * with its exact message, what falls back to which value, and the setuid rule. The environment
 * is a fake behind the injectable getenv; /etc is a path the test chooses. */
#include "conf_fixture.h"

#include <sys/stat.h>

static struct tcm_config config;

static void no_file_gives_defaults(void **state)
{
	(void)state;
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 0);
	assert_int_equal(fake_error_count, 0);
	assert_int_equal(config.exit.deadline_ms, 1000);
	assert_int_equal(config.exit.margin_ms, 50);
	assert_true(config.exit.release_on_shutdown);
	assert_int_equal(config.release.rate_mib_s, 0);
	assert_int_equal(config.release.chunk_kib, 2048);
	assert_int_equal(config.cache.thread_max_kib, 512);
	assert_int_equal(config.cache.total_max_mib, 64);
	assert_int_equal(config.notify.ready, TCM_CONFIG_NOTIFY_READY_OFF);
	assert_true(config.notify.stopping);
	assert_true(config.notify.status);
	assert_int_equal(config.stats.on_exit, TCM_CONFIG_STATS_TO_OFF);
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_FILE), "");
	for (int k = 0; k < TCM_CONFIG_KEY_COUNT; k++)
		assert_int_equal(config.origin[k].source, TCM_CONFIG_FROM_DEFAULT);
}

static void valid_file_sets_values_and_origins(void **state)
{
	(void)state;
	const char *path = fake_file("# a comment\n"
				     "exit: { deadline_ms = 1500; margin_ms = 100; release_on_shutdown = false; };\n"
				     "release: { rate_mib_s = 64; chunk_kib = 1024; };\n"
				     "cache: { thread_max_kib = 2048; total_max_mib = 256; };\n"
				     "notify: { ready = \"init\"; stopping = false; status = false; };\n"
				     "stats: { on_exit = \"/var/log/tcm/stats.json\"; };\n");
	struct tcm_config_sources sources = fake_sources();
	sources.etc_path = path;
	assert_int_equal(tcm_config_load(&config, &sources), 0);
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_FILE), path);
	assert_int_equal(config.exit.deadline_ms, 1500);
	assert_int_equal(config.exit.margin_ms, 100);
	assert_false(config.exit.release_on_shutdown);
	assert_int_equal(config.release.rate_mib_s, 64);
	assert_int_equal(config.release.chunk_kib, 1024);
	assert_int_equal(config.cache.thread_max_kib, 2048);
	assert_int_equal(config.cache.total_max_mib, 256);
	assert_int_equal(config.notify.ready, TCM_CONFIG_NOTIFY_READY_INIT);
	assert_false(config.notify.stopping);
	assert_false(config.notify.status);
	assert_int_equal(config.stats.on_exit, TCM_CONFIG_STATS_TO_FILE);
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_STATS_ON_EXIT), "/var/log/tcm/stats.json");
	assert_int_equal(config.origin[TCM_CONFIG_EXIT_DEADLINE_MS].source, TCM_CONFIG_FROM_FILE);
	assert_int_equal(config.origin[TCM_CONFIG_EXIT_DEADLINE_MS].line, 2);
	assert_int_equal(config.origin[TCM_CONFIG_STATS_ON_EXIT].line, 6);
}

static void missing_etc_file_is_not_an_error(void **state)
{
	(void)state;
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 0);
	assert_int_equal(fake_error_count, 0);
}

static void missing_tcm_conf_file_is_an_error(void **state)
{
	(void)state;
	fake_setenv("TCM_CONF", "/nonexistent/tcm.conf");
	fake_setenv("TCM_EXIT_DEADLINE_MS", "1500");
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 1);
	assert_string_equal(fake_errors[0],
			    "/nonexistent/tcm.conf: cannot read: No such file or directory; using defaults");
	assert_int_equal(config.exit.deadline_ms, 1500);  /* the overrides still apply */
}

static void unreadable_file_is_an_error(void **state)
{
	(void)state;
	struct tcm_config_sources sources = fake_sources();
	sources.etc_path = "/tmp";  /* exists, but a directory: an /etc path that is there must be readable */
	assert_int_equal(tcm_config_load(&config, &sources), 1);
	assert_string_equal(fake_errors[0], "/tmp: cannot read: Is a directory; using defaults");
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_FILE), "");
}

static void syntax_error_ignores_whole_file(void **state)
{
	(void)state;
	const char *path = fake_file("exit: { deadline_ms = 1500; };\n"
				     "cache: { thread_max_kib = 2048 \n");
	fake_setenv("TCM_CONF", path);
	fake_setenv("TCM_CACHE_TOTAL_MAX_MIB", "128");
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 1);
	assert_string_equal(fake_error_text(0, path), "FILE:3: syntax error; the whole file is ignored");
	assert_int_equal(config.exit.deadline_ms, 1000);  /* line 1 was fine, but the file is dropped */
	assert_int_equal(config.origin[TCM_CONFIG_EXIT_DEADLINE_MS].source, TCM_CONFIG_FROM_DEFAULT);
	assert_int_equal(config.cache.total_max_mib, 128);
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_FILE), "");
}

static void unknown_key_suggests_the_nearest(void **state)
{
	(void)state;
	const char *path = fake_file("exit: {\n  dedline_ms = 1500;\n  margin_ms = 20;\n};\n"
				     "deadline_ms = 5;\n"
				     "exitt: { margin_ms = 3; };\n"
				     "exit_code = 3;\n"
				     "cache: { zzzz_qqqq_wwww = 1; };\n");
	fake_setenv("TCM_CONF", path);
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 5);
	assert_string_equal(fake_error_text(0, path),
			    "FILE:2: unknown key exit.dedline_ms (did you mean exit.deadline_ms?)");
	assert_string_equal(fake_error_text(1, path),
			    "FILE:5: unknown key deadline_ms (did you mean exit.deadline_ms?)");
	assert_string_equal(fake_error_text(2, path),
			    "FILE:6: unknown key exitt.margin_ms (did you mean exit.margin_ms?)");
	assert_string_equal(fake_error_text(3, path), "FILE:7: unknown key exit_code");
	assert_string_equal(fake_error_text(4, path), "FILE:8: unknown key cache.zzzz_qqqq_wwww");
	assert_int_equal(config.exit.margin_ms, 20);  /* the known key beside the typo applies */
}

static void wrong_type_keeps_that_key_default(void **state)
{
	(void)state;
	const char *path = fake_file("exit: { deadline_ms = \"abc\"; margin_ms = 1000.0; };\n"
				     "cache: { thread_max_kib = true; total_max_mib = 128; };\n"
				     "notify: { stopping = 1; ready = [\"init\"]; status = { }; };\n"
				     "release = 5;\n");
	fake_setenv("TCM_CONF", path);
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 7);
	assert_string_equal(fake_error_text(0, path),
			    "FILE:1: exit.deadline_ms: expected an integer from 1 to 600000 (milliseconds), got \"abc\"");
	assert_string_equal(fake_error_text(1, path),
			    "FILE:1: exit.margin_ms: expected an integer from 0 to 599999 (milliseconds), got 1000.0");
	assert_string_equal(fake_error_text(2, path),
			    "FILE:2: cache.thread_max_kib: expected an integer from 64 to 1048576 (KiB), got true");
	assert_string_equal(fake_error_text(3, path),
			    "FILE:3: notify.stopping: expected true or false, got 1");
	assert_string_equal(fake_error_text(4, path),
			    "FILE:3: notify.ready: expected \"off\" or \"init\", got an array");
	assert_string_equal(fake_error_text(5, path),
			    "FILE:3: notify.status: expected true or false, got a group");
	assert_string_equal(fake_error_text(6, path), "FILE:4: release: expected a group { ... }, got 5");
	assert_int_equal(config.exit.deadline_ms, 1000);
	assert_int_equal(config.cache.thread_max_kib, 512);
	assert_int_equal(config.cache.total_max_mib, 128);
	assert_int_equal(config.origin[TCM_CONFIG_CACHE_THREAD_MAX_KIB].source, TCM_CONFIG_FROM_DEFAULT);
}

static void out_of_range_keeps_that_key_default(void **state)
{
	(void)state;
	const char *path = fake_file("exit: { deadline_ms = 0; };\n"
				     "release: { chunk_kib = 100; rate_mib_s = -1; };\n"
				     "cache: { thread_max_kib = 1048577; total_max_mib = 8L; };\n"
				     "stats: { on_exit = \"stats.json\"; };\n");
	fake_setenv("TCM_CONF", path);
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 5);
	assert_string_equal(fake_error_text(0, path),
			    "FILE:1: exit.deadline_ms: expected an integer from 1 to 600000 (milliseconds), got 0");
	assert_string_equal(fake_error_text(1, path),
			    "FILE:2: release.chunk_kib: expected a multiple of 8 from 8 to 1048576 (KiB), got 100");
	assert_string_equal(fake_error_text(2, path),
			    "FILE:2: release.rate_mib_s: expected an integer from 0 to 1048576 (MiB per second), got -1");
	assert_string_equal(fake_error_text(3, path),
			    "FILE:3: cache.thread_max_kib: expected an integer from 64 to 1048576 (KiB), got 1048577");
	assert_string_equal(fake_error_text(4, path),
			    "FILE:4: stats.on_exit: expected \"off\", \"stderr\" or an absolute path ending in .json or .prom, got \"stats.json\"");
	assert_int_equal(config.exit.deadline_ms, 1000);
	assert_int_equal(config.release.chunk_kib, 2048);
	assert_int_equal(config.cache.total_max_mib, 8);  /* a 64-bit literal in range is fine */
	assert_int_equal(config.stats.on_exit, TCM_CONFIG_STATS_TO_OFF);
}

/* libconfig 1.5 wraps an integer past 32 bits written without an L and clamps one past 64 bits
 * with it: each is refused quoting the literal as written, and the key keeps its default (which
 * 4294968296's wrapped value, 1000, happens to equal). The same checks read a value written on
 * the line after its name. */
static void integer_misread_by_libconfig_is_refused_as_written(void **state)
{
	(void)state;
	const char *path = fake_file("exit: { deadline_ms = 4294968296; margin_ms = 9999999999999; };\n"
				     "release: { rate_mib_s = 99999999999999999999L; chunk_kib = 0x100000000; };\n"
				     "cache: { thread_max_kib =\n    2048; total_max_mib = 4294967296L; };\n");
	fake_setenv("TCM_CONF", path);
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 5);
	assert_string_equal(fake_error_text(0, path),
			    "FILE:1: exit.deadline_ms: expected an integer from 1 to 600000 (milliseconds), got 4294968296");
	assert_string_equal(fake_error_text(1, path),
			    "FILE:1: exit.margin_ms: expected an integer from 0 to 599999 (milliseconds), got 9999999999999");
	assert_string_equal(fake_error_text(2, path),
			    "FILE:2: release.rate_mib_s: expected an integer from 0 to 1048576 (MiB per second), "
			    "got 99999999999999999999L");
	assert_string_equal(fake_error_text(3, path),
			    "FILE:2: release.chunk_kib: expected a multiple of 8 from 8 to 1048576 (KiB), got 0x100000000");
	assert_string_equal(fake_error_text(4, path),
			    "FILE:4: cache.total_max_mib: expected an integer from 1 to 1048576 (MiB), got 4294967296");
	assert_int_equal(config.origin[TCM_CONFIG_EXIT_DEADLINE_MS].source, TCM_CONFIG_FROM_DEFAULT);
	assert_int_equal(config.exit.margin_ms, 50);
	assert_int_equal(config.release.rate_mib_s, 0);
	assert_int_equal(config.release.chunk_kib, 2048);
	assert_int_equal(config.cache.thread_max_kib, 2048);   /* on the line after its name */
	assert_int_equal(config.origin[TCM_CONFIG_CACHE_THREAD_MAX_KIB].source, TCM_CONFIG_FROM_FILE);
}

/* A TCM_ variable that is no variable of tcm's would be silently without effect: it is an error
 * with the nearest variable suggested. tcm's others (TCM_CONF, TCM_LIB, TCM_TESTING_*) and
 * other programs' variables are not. */
static void unknown_tcm_variable_suggests_the_nearest(void **state)
{
	(void)state;
	fake_setenv("TCM_EXIT_DEDLINE_MS", "5");
	fake_setenv("TCM_LIB", "/usr/lib/libtcm.so");
	fake_setenv("TCM_TESTING_KERNEL_PAGE_KIB", "64");
	fake_setenv("TCM_FROBNICATE", "1");
	fake_setenv("TCMALLOC_RELEASE_RATE", "10");
	fake_setenv("TCM_CACHE_THREAD_MAX_KIB", "1024");
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 2);
	assert_string_equal(fake_error_text(0, NULL),
			    "TCM_EXIT_DEDLINE_MS: no such tcm variable, ignored (did you mean TCM_EXIT_DEADLINE_MS?)");
	assert_string_equal(fake_error_text(1, NULL), "TCM_FROBNICATE: no such tcm variable, ignored");
	assert_int_equal(config.exit.deadline_ms, 1000);
	assert_int_equal(config.cache.thread_max_kib, 1024);
}

static void include_is_refused(void **state)
{
	(void)state;
	const char *inner = fake_file("cache: { total_max_mib = 128; };\n");
	char text[256];
	snprintf(text, sizeof text, "exit: { deadline_ms = 1500; };\n@include \"%s\"\n", inner);
	const char *path = fake_file(text);
	fake_setenv("TCM_CONF", path);
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 1);
	assert_string_equal(fake_error_text(0, inner),
			    "FILE:1: cache.total_max_mib: set in an @include file, which tcm does not read");
	assert_int_equal(config.exit.deadline_ms, 1500);
	assert_int_equal(config.cache.total_max_mib, 64);
}

/* libconfig reads an @include'd file itself and ends the process when the
 * read fails ("input in flex scanner failed", exit(2)), as it does on a
 * directory: the fuzzer's crash-eaa9b83 (@include "/"). tcm refuses the file
 * that names one, at any depth, and keeps running on defaults. */
static void include_of_a_directory_is_refused_without_exit(void **state)
{
	(void)state;
	const char *inner = fake_file("@include \"/\"\n");
	char text[256];
	snprintf(text, sizeof text, "exit: { deadline_ms = 1500; };\n@include \"%s\"\n", inner);
	const char *path = fake_file(text);
	fake_setenv("TCM_CONF", path);
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 1);
	assert_string_equal(fake_error_text(0, inner),
			    "FILE:1: @include \"/\": Is a directory; the whole file is ignored");
	assert_int_equal(config.exit.deadline_ms, 1000);
}

static void env_overrides_file_overrides_default(void **state)
{
	(void)state;
	const char *path = fake_file("exit: { deadline_ms = 1500; margin_ms = 100; };\n");
	fake_setenv("TCM_CONF", path);
	fake_setenv("TCM_EXIT_DEADLINE_MS", "2500");
	fake_setenv("TCM_CACHE_THREAD_MAX_KIB", "1024");
	fake_setenv("TCM_NOTIFY_READY", "init");
	fake_setenv("TCM_NOTIFY_STATUS", "FALSE");
	fake_setenv("TCM_EXIT_RELEASE_ON_SHUTDOWN", "0");
	fake_setenv("TCM_STATS_ON_EXIT", "stderr");
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 0);
	assert_int_equal(config.exit.deadline_ms, 2500);  /* env over file */
	assert_int_equal(config.origin[TCM_CONFIG_EXIT_DEADLINE_MS].source, TCM_CONFIG_FROM_ENV);
	assert_int_equal(config.exit.margin_ms, 100);     /* file over default */
	assert_int_equal(config.origin[TCM_CONFIG_EXIT_MARGIN_MS].source, TCM_CONFIG_FROM_FILE);
	assert_int_equal(config.cache.thread_max_kib, 1024);  /* env over default */
	assert_int_equal(config.cache.total_max_mib, 64);
	assert_int_equal(config.origin[TCM_CONFIG_CACHE_TOTAL_MAX_MIB].source, TCM_CONFIG_FROM_DEFAULT);
	assert_int_equal(config.notify.ready, TCM_CONFIG_NOTIFY_READY_INIT);
	assert_false(config.notify.status);
	assert_false(config.exit.release_on_shutdown);
	assert_int_equal(config.stats.on_exit, TCM_CONFIG_STATS_TO_STDERR);
}

static void bad_env_value_keeps_file_value(void **state)
{
	(void)state;
	const char *path = fake_file("exit: { deadline_ms = 1500; };\n");
	fake_setenv("TCM_CONF", path);
	fake_setenv("TCM_EXIT_DEADLINE_MS", "abc");
	fake_setenv("TCM_RELEASE_CHUNK_KIB", "12");
	fake_setenv("TCM_CACHE_TOTAL_MAX_MIB", " 12");
	fake_setenv("TCM_NOTIFY_STOPPING", "yes");
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 4);
	assert_string_equal(fake_errors[0],
			    "TCM_EXIT_DEADLINE_MS: expected an integer from 1 to 600000 (milliseconds), got \"abc\"");
	assert_string_equal(fake_errors[1],
			    "TCM_RELEASE_CHUNK_KIB: expected a multiple of 8 from 8 to 1048576 (KiB), got \"12\"");
	assert_string_equal(fake_errors[2],
			    "TCM_CACHE_TOTAL_MAX_MIB: expected an integer from 1 to 1048576 (MiB), got \" 12\"");
	assert_string_equal(fake_errors[3], "TCM_NOTIFY_STOPPING: expected true or false, got \"yes\"");
	assert_int_equal(config.exit.deadline_ms, 1500);
	assert_int_equal(config.origin[TCM_CONFIG_EXIT_DEADLINE_MS].source, TCM_CONFIG_FROM_FILE);
	assert_int_equal(config.release.chunk_kib, 2048);
}

static void messages_stay_on_one_line(void **state)
{
	(void)state;
	const char *path = fake_file("notify: { ready = \"in\\nit\\x1b[2J\"; };\n");
	fake_setenv("TCM_CONF", path);
	fake_setenv("TCM_STATS_ON_EXIT", "std\nerr\x7f");
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 2);
	assert_string_equal(fake_error_text(0, path),
			    "FILE:1: notify.ready: expected \"off\" or \"init\", got \"in?it?[2J\"");
	assert_string_equal(fake_errors[1],
			    "TCM_STATS_ON_EXIT: expected \"off\", \"stderr\" or an absolute path ending in .json or .prom, got \"std?err?\"");
}

static void tcm_conf_wins_over_etc_file(void **state)
{
	(void)state;
	const char *etc = fake_file("exit: { deadline_ms = 1111; };\ncache: { total_max_mib = 128; };\n");
	const char *chosen = fake_file("exit: { deadline_ms = 2222; };\n");
	fake_setenv("TCM_CONF", chosen);
	struct tcm_config_sources sources = fake_sources();
	sources.etc_path = etc;
	assert_int_equal(tcm_config_load(&config, &sources), 0);
	assert_int_equal(config.exit.deadline_ms, 2222);
	assert_int_equal(config.cache.total_max_mib, 64);  /* files are not merged: /etc is not read */
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_FILE), chosen);
}

static void empty_tcm_conf_means_etc_file(void **state)
{
	(void)state;
	const char *etc = fake_file("exit: { deadline_ms = 1111; };\n");
	fake_setenv("TCM_CONF", "");
	struct tcm_config_sources sources = fake_sources();
	sources.etc_path = etc;
	assert_int_equal(tcm_config_load(&config, &sources), 0);
	assert_int_equal(config.exit.deadline_ms, 1111);
}

static void explicit_file_wins_over_tcm_conf(void **state)
{
	(void)state;
	const char *env_file = fake_file("exit: { deadline_ms = 1111; };\n");
	const char *explicit_file = fake_file("exit: { deadline_ms = 3333; };\n");
	fake_setenv("TCM_CONF", env_file);
	struct tcm_config_sources sources = fake_sources();
	sources.file = explicit_file;
	assert_int_equal(tcm_config_load(&config, &sources), 0);
	assert_int_equal(config.exit.deadline_ms, 3333);
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_FILE), explicit_file);
}

/* secure_getenv returns NULL in a setuid/setgid program: TCM_CONF and TCM_* are not seen, and
 * only the /etc file counts. The same environment through a plain getenv is honoured. */
static void setuid_ignores_tcm_conf_and_overrides(void **state)
{
	(void)state;
	const char *etc = fake_file("exit: { deadline_ms = 1111; };\n");
	const char *user_file = fake_file("exit: { deadline_ms = 9999; };\ncache: { total_max_mib = 4096; };\n");
	fake_setenv("TCM_CONF", user_file);
	fake_setenv("TCM_CACHE_THREAD_MAX_KIB", "1048576");
	struct tcm_config_sources sources = fake_sources();
	sources.etc_path = etc;

	assert_int_equal(tcm_config_load(&config, &sources), 0);
	assert_int_equal(config.exit.deadline_ms, 9999);
	assert_int_equal(config.cache.thread_max_kib, 1048576);

	sources.getenv = fake_secure_getenv_setuid;
	assert_int_equal(tcm_config_load(&config, &sources), 0);
	assert_int_equal(config.exit.deadline_ms, 1111);
	assert_int_equal(config.cache.total_max_mib, 64);
	assert_int_equal(config.cache.thread_max_kib, 512);
	assert_string_equal(tcm_config_path(&config, TCM_CONFIG_PATH_FILE), etc);
}

static void margin_must_be_below_deadline(void **state)
{
	(void)state;
	const char *path = fake_file("exit: {\n  deadline_ms = 1000;\n  margin_ms = 1000;\n};\n");
	fake_setenv("TCM_CONF", path);
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 1);
	assert_string_equal(fake_error_text(0, path),
			    "FILE:3: exit.margin_ms: expected less than exit.deadline_ms (1000), got 1000");
	assert_int_equal(config.exit.margin_ms, 50);  /* min(default, deadline / 2) */
	assert_int_equal(config.origin[TCM_CONFIG_EXIT_MARGIN_MS].source, TCM_CONFIG_FROM_DEFAULT);

	fake_reset(NULL);
	fake_setenv("TCM_EXIT_DEADLINE_MS", "60");
	fake_setenv("TCM_EXIT_MARGIN_MS", "70");
	assert_int_equal(tcm_config_load(&config, &sources), 1);
	assert_string_equal(fake_errors[0], "TCM_EXIT_MARGIN_MS: expected less than exit.deadline_ms (60), got 70");
	assert_int_equal(config.exit.margin_ms, 30);
}

static void default_margin_shrinks_silently_for_short_deadline(void **state)
{
	(void)state;
	fake_setenv("TCM_EXIT_DEADLINE_MS", "40");
	struct tcm_config_sources sources = fake_sources();
	assert_int_equal(tcm_config_load(&config, &sources), 0);
	assert_int_equal(config.exit.deadline_ms, 40);
	assert_int_equal(config.exit.margin_ms, 20);
	fake_reset(NULL);
	fake_setenv("TCM_EXIT_DEADLINE_MS", "1");
	assert_int_equal(tcm_config_load(&config, &sources), 0);
	assert_int_equal(config.exit.margin_ms, 0);
}

static void no_error_sink_still_loads(void **state)
{
	(void)state;
	const char *path = fake_file("exit: { deadline_ms = -5; margin_ms = 10; };\n");
	fake_setenv("TCM_CONF", path);
	struct tcm_config_sources sources = fake_sources();
	sources.error = NULL;
	assert_int_equal(tcm_config_load(&config, &sources), 1);
	assert_int_equal(config.exit.deadline_ms, 1000);
	assert_int_equal(config.exit.margin_ms, 10);
}

#define CONF_TEST(name) cmocka_unit_test_teardown(name, fake_reset)
static const struct CMUnitTest tests[] = {
	CONF_TEST(no_file_gives_defaults),
	CONF_TEST(valid_file_sets_values_and_origins),
	CONF_TEST(missing_etc_file_is_not_an_error),
	CONF_TEST(missing_tcm_conf_file_is_an_error),
	CONF_TEST(unreadable_file_is_an_error),
	CONF_TEST(syntax_error_ignores_whole_file),
	CONF_TEST(unknown_key_suggests_the_nearest),
	CONF_TEST(wrong_type_keeps_that_key_default),
	CONF_TEST(out_of_range_keeps_that_key_default),
	CONF_TEST(integer_misread_by_libconfig_is_refused_as_written),
	CONF_TEST(unknown_tcm_variable_suggests_the_nearest),
	CONF_TEST(include_is_refused),
	CONF_TEST(include_of_a_directory_is_refused_without_exit),
	CONF_TEST(env_overrides_file_overrides_default),
	CONF_TEST(bad_env_value_keeps_file_value),
	CONF_TEST(messages_stay_on_one_line),
	CONF_TEST(tcm_conf_wins_over_etc_file),
	CONF_TEST(empty_tcm_conf_means_etc_file),
	CONF_TEST(explicit_file_wins_over_tcm_conf),
	CONF_TEST(setuid_ignores_tcm_conf_and_overrides),
	CONF_TEST(margin_must_be_below_deadline),
	CONF_TEST(default_margin_shrinks_silently_for_short_deadline),
	CONF_TEST(no_error_sink_still_loads),
};

UNIT_MAIN("conf_load", tests)
