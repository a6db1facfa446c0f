/* tests/process/strict_c_signal.c - a strict ISO C translation unit (the project's -std=c11 and
 * no feature-test macro): glibc's <signal.h> makes its signal() a call of __sysv_signal, which
 * the SIGTERM matrix's strict_c_signal scenario installs its handler with. */
#include <signal.h>

void (*strict_c_signal(int signo, void (*handler)(int)))(int);

void (*strict_c_signal(int signo, void (*handler)(int)))(int)
{
	return signal(signo, handler);
}
