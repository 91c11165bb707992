/*
 * A minimal unit-test harness. Each test prints one line, "PASS name" or
 * "FAIL name: where: what"; test/run.sh counts those lines. A test keeps
 * running after a failed check so one run shows every broken expectation.
 */
#ifndef TORSIEVE_TEST_CHECK_H
#define TORSIEVE_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_test_failed;
static int check_total_failed;
static int check_total_passed;
static const char *check_current;

#define CHECK(cond)                                                                               \
	do {                                                                                      \
		if (!(cond)) {                                                                    \
			printf("FAIL %s: %s:%d: %s\n", check_current, __FILE__, __LINE__, #cond); \
			check_test_failed = 1;                                                    \
		}                                                                                 \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                 \
	do {                                                                               \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);            \
		if (check_a_ != check_b_) {                                                \
			printf("FAIL %s: %s:%d: %s == %s (%lld != %lld)\n", check_current, \
			       __FILE__, __LINE__, #a, #b, check_a_, check_b_);            \
			check_test_failed = 1;                                             \
		}                                                                          \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                                     \
	do {                                                                                   \
		const char *check_a_ = (a), *check_b_ = (b);                                   \
		if (strcmp(check_a_, check_b_) != 0) {                                         \
			printf("FAIL %s: %s:%d: %s == %s (\"%s\" != \"%s\")\n", check_current, \
			       __FILE__, __LINE__, #a, #b, check_a_, check_b_);                \
			check_test_failed = 1;                                                 \
		}                                                                              \
	} while (0)

static inline void check_run(const char *name, void (*fn)(void))
{
	check_current = name;
	check_test_failed = 0;
	fn();
	if (check_test_failed) {
		check_total_failed++;
	} else {
		check_total_passed++;
		printf("PASS %s\n", name);
	}
}

#define RUN(fn) check_run(#fn, fn)

static inline int check_exit_code(void)
{
	return check_total_failed ? 1 : 0;
}

#endif
