/*
 * unit.h — a tiny test framework for the C unit drivers in spec/c/.
 *
 * A driver is a table of named cases and UNIT_MAIN(table).  It prints one
 * line per case, in table order:
 *
 *	ok <name>
 *	not ok <name>: <detail>
 *
 * and exits 0 only if every case passed.  A name has no colon, so the first
 * colon of a "not ok" line ends the name; the detail is one line of
 * printable ASCII.  spec/unit/c_units_spec.lua turns each line into an `it`.
 *
 * A failed check longjmps back to the runner, so helpers may check too.
 * Memory from unit_dup() and unit_alloc() belongs to the running case and
 * is freed after it, passed or not: under ASan an exact-size copy with no
 * terminator turns any read past the length into a report.
 */
#ifndef LUASMTPD_UNIT_H
#define LUASMTPD_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct unit_case {
	const char	*name;
	void		(*fn)(void);
};

#define UNIT_DETAIL_MAX		400
#define UNIT_ALLOCS_MAX		256

static jmp_buf	 unit_jmp;
static char	 unit_detail[UNIT_DETAIL_MAX];
static void	*unit_allocs[UNIT_ALLOCS_MAX];
static size_t	 unit_nallocs;

static void unit_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static void
unit_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(unit_detail, sizeof(unit_detail), "%s line %d, ", file,
	    line);
	if (n < 0 || (size_t)n >= sizeof(unit_detail))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(unit_detail + n, sizeof(unit_detail) - (size_t)n, fmt, ap);
	va_end(ap);
	longjmp(unit_jmp, 1);
}

/* A case-owned buffer of n bytes (n may be 0). */
static inline void *
unit_alloc(size_t n)
{
	void *p;

	if (unit_nallocs == UNIT_ALLOCS_MAX)
		unit_fail(__FILE__, __LINE__, "too many unit_alloc() in one case");
	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		unit_fail(__FILE__, __LINE__, "out of memory");
	unit_allocs[unit_nallocs++] = p;
	return p;
}

/*
 * Loops that allocate per iteration free as they go: unit_release(mark)
 * frees what was allocated since mark = unit_mark().
 */
static inline size_t
unit_mark(void)
{
	return unit_nallocs;
}

static inline void
unit_release(size_t mark)
{
	while (unit_nallocs > mark)
		free(unit_allocs[--unit_nallocs]);
}

/* An exact-size copy of s[0..len), with no terminator. */
static inline char *
unit_dup(const char *s, size_t len)
{
	char *p = unit_alloc(len);

	memcpy(p, s, len);
	return p;
}

/* Bytes as C-escaped printable ASCII, cut to fit out[outsz]. */
static inline const char *
unit_escape(const void *p, size_t len, char *out, size_t outsz)
{
	const unsigned char *s = p;
	size_t o = 0;

	for (size_t i = 0; i < len && o + 8 < outsz; i++) {
		if (s[i] == '\r')
			o += (size_t)snprintf(out + o, outsz - o, "\\r");
		else if (s[i] == '\n')
			o += (size_t)snprintf(out + o, outsz - o, "\\n");
		else if (s[i] == '\\' || s[i] == '"')
			o += (size_t)snprintf(out + o, outsz - o, "\\%c", s[i]);
		else if (s[i] < 32 || s[i] > 126)
			o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", s[i]);
		else
			out[o++] = (char)s[i];
		if (i + 1 < len && o + 8 >= outsz) {
			o += (size_t)snprintf(out + o, outsz - o, "...");
			break;
		}
	}
	out[o] = '\0';
	return out;
}

#define CHECK(cond) do {						\
	if (!(cond))							\
		unit_fail(__FILE__, __LINE__, "failed %s", #cond);	\
} while (0)

#define CHECK_INT(got, want) do {					\
	long long g_ = (long long)(got), w_ = (long long)(want);	\
	if (g_ != w_)							\
		unit_fail(__FILE__, __LINE__, "%s is %lld, want %lld",	\
		    #got, g_, w_);					\
} while (0)

#define CHECK_U64(got, want) do {					\
	unsigned long long g_ = (got), w_ = (want);			\
	if (g_ != w_)							\
		unit_fail(__FILE__, __LINE__, "%s is %llu, want %llu",	\
		    #got, g_, w_);					\
} while (0)

#define CHECK_STR(got, want) do {					\
	const char *g_ = (got), *w_ = (want);				\
	char eg_[120], ew_[120];					\
	if (g_ == NULL)							\
		g_ = "(null)";						\
	if (strcmp(g_, w_) != 0)					\
		unit_fail(__FILE__, __LINE__, "%s is \"%s\", want \"%s\"", \
		    #got, unit_escape(g_, strlen(g_), eg_, sizeof(eg_)),	\
		    unit_escape(w_, strlen(w_), ew_, sizeof(ew_)));	\
} while (0)

/* got[0..glen) must be the bytes of want[0..wlen). */
#define CHECK_MEM(got, glen, want, wlen) do {				\
	const void *g_ = (got), *w_ = (want);				\
	size_t gl_ = (glen), wl_ = (wlen);				\
	char eg_[160], ew_[160];					\
	if (gl_ != wl_ || memcmp(g_, w_, gl_) != 0)			\
		unit_fail(__FILE__, __LINE__, "%s is \"%s\", want \"%s\"", \
		    #got, unit_escape(g_, gl_, eg_, sizeof(eg_)),		\
		    unit_escape(w_, wl_, ew_, sizeof(ew_)));		\
} while (0)

/* Runs one case; 0 if it passed, -1 if a check failed (detail set). */
static int
unit_run_one(void (*fn)(void))
{
	if (setjmp(unit_jmp) != 0)
		return -1;
	fn();
	return 0;
}

static int
unit_run(const struct unit_case *cases, size_t n)
{
	size_t failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < n; i++) {
		const char *name = cases[i].name;
		bool bad_name = name[0] == '\0' || strchr(name, ':') != NULL ||
		    strchr(name, '\n') != NULL;

		for (size_t k = 0; k < i && !bad_name; k++)
			bad_name = strcmp(cases[k].name, name) == 0;
		if (bad_name) {
			printf("not ok case %zu: its name is empty, repeated "
			    "or has a colon or newline\n", i + 1);
			failed++;
			continue;
		}
		unit_detail[0] = '\0';
		if (unit_run_one(cases[i].fn) == 0) {
			printf("ok %s\n", name);
		} else {
			printf("not ok %s: %s\n", name, unit_detail);
			failed++;
		}
		unit_release(0);
	}
	return failed == 0 ? 0 : 1;
}

#define UNIT_MAIN(table)						\
int									\
main(void)								\
{									\
	return unit_run(table, sizeof(table) / sizeof(table[0]));	\
}

#endif
