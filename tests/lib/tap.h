/* tap.h - a minimal Test Anything Protocol emitter for C tests.
 *
 * Usage: call tap_plan(n) (or tap_plan_none() and tap_done() at the end),
 * then ok(cond, fmt, ...). tap_exit() returns the process exit status:
 * 0 when every test passed and the plan was met, 1 otherwise.
 * Header-only: every function is static inline, one copy per test program.
 */
#ifndef CHRONIK_TAP_H
#define CHRONIK_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_n_run;
static int tap_n_failed;
static int tap_n_planned = -1;

static inline void tap_plan(int n)
{
	tap_n_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline void tap_skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	fflush(stdout);
	exit(0);
}

__attribute__((format(printf, 2, 3))) static inline int ok(int cond, const char *fmt, ...)
{
	va_list ap;
	tap_n_run++;
	if (!cond)
		tap_n_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

__attribute__((format(printf, 1, 2))) static inline void diag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Abort the whole test program: TAP's "Bail out!". */
__attribute__((format(printf, 1, 2), noreturn)) static inline void bail(const char *fmt, ...)
{
	va_list ap;
	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

static inline int tap_exit(void)
{
	if (tap_n_planned < 0) {
		printf("1..%d\n", tap_n_run);
		tap_n_planned = tap_n_run;
	}
	if (tap_n_run != tap_n_planned)
		diag("planned %d tests but ran %d", tap_n_planned, tap_n_run);
	fflush(stdout);
	return (tap_n_failed == 0 && tap_n_run == tap_n_planned) ? 0 : 1;
}

#endif
