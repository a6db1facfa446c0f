/* tools/tcmctl.h - what tcmctl's commands share: the help text, usage errors, option parsing
 * and where libtcm.so is. tcmctl.c holds them and the check, show, keys and run commands;
 * dropin.c the dropin command, stats.c the stats command. Exit statuses: 0 success, 1 failed action, 2 usage error. */
#ifndef TCM_TOOLS_TCMCTL_H
#define TCM_TOOLS_TCMCTL_H

#include <getopt.h>
#include <stdio.h>

#include "config.h"

/* Prints the help text to `to`; returns status. */
int tcmctl_usage(FILE *to, int status);

/* A usage error: "tcmctl: MESSAGE" and one line saying where help is, on stderr. Returns 2. */
__attribute__((format(printf, 1, 2))) int tcmctl_usage_error(const char *format, ...);

enum tcmctl_parsed { TCMCTL_PARSED_OK, TCMCTL_PARSED_HELP, TCMCTL_PARSED_ERROR };

/* Parses a command's options (argv[0] is the command) with getopt_long; short_options starts
 * with "+:" (stop at the first operand, report a missing argument) and has 'h' for --help. The
 * argument of long_options[i] lands in values[i]. On TCMCTL_PARSED_ERROR the usage error has
 * been printed. *operands: the index of the first operand in argv. */
enum tcmctl_parsed tcmctl_parse_options(int argc, char **argv, const char *short_options,
					 const struct option *long_options, const char **values, int *operands);

/* libtcm.so's absolute path into lib_path (PATH_MAX bytes): lib when given, else $TCM_LIB, else
 * the installed one beside tcmctl (the install tree's layout, wherever it was installed).
 * Absolute, because a program may change directory before it execs others. Returns 0, or 1
 * after an error line on stderr. */
int tcmctl_find_lib(const char *lib, char *lib_path);

/* Loads *config as a process would, from file when it is not NULL (else $TCM_CONF or
 * /etc/tcm.conf) and tcmctl's environment; each error is one line on stderr. Returns the
 * number of errors. */
int tcmctl_load_config(const char *file, struct tcm_config *config);

/* tcmctl dropin [--lib PATH] [-c FILE] [--properties FILE] UNIT (dropin.c). */
int tcmctl_dropin(int argc, char **argv);

/* tcmctl stats FILE|PID (stats.c). */
int tcmctl_stats(int argc, char **argv);

#endif
