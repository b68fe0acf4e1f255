/*
 * fuzz_proxy.c — libFuzzer target: the PROXY protocol header parser
 * (src/net/proxy.c), which reads whatever a balancer — or anyone who
 * reaches a proxy listener from a trusted address — sends first.
 *
 * The input is parsed whole and then prefix by prefix, as the front end
 * sees it arrive: every proper prefix of a complete header is AGAIN, the
 * header is DONE exactly at its last octet with the same result, and an
 * invalid input is invalid at some prefix, never AGAIN after it.  A
 * result must be what net/frontend.c relies on: a length within the input
 * and within PROXY_HEADER_MAX, addresses of a family it handles, a reason
 * for every refusal, and no AGAIN once PROXY_HEADER_MAX octets are there.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(enum proxy_status st, const struct proxy_result *r, size_t n)
{
	if (st == PROXY_INVALID) {
		assert(r->error != NULL && r->error[0] != '\0');
		return;
	}
	if (st == PROXY_AGAIN) {
		assert(n < PROXY_HEADER_MAX);
		return;
	}
	assert(st == PROXY_DONE);
	assert(r->len > 0 && r->len <= n && r->len <= PROXY_HEADER_MAX);
	assert(r->version == 1 || r->version == 2);
	if (r->version == 1)
		assert(r->len <= PROXY_V1_MAX);
	if (r->command == PROXY_CMD_PROXY) {
		int f = r->src.ss_family;

		assert(f == AF_INET || f == AF_INET6 || f == AF_UNIX);
		assert(r->dst.ss_family == f);
		if (f == AF_UNIX)	/* terminated within sun_path */
			assert(memchr(((const char *)&r->src) + 2, 0, 108) != NULL);
	} else {
		assert(r->command == PROXY_CMD_LOCAL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_result whole, part;
	enum proxy_status st, pst = PROXY_AGAIN;
	uint8_t *in;
	size_t i;

	if (size > 2 * PROXY_HEADER_MAX)
		size = 2 * PROXY_HEADER_MAX;
	/* An exact-size copy: ASan catches a read past the input. */
	in = malloc(size ? size : 1);
	memcpy(in, data, size);
	st = proxy_parse(in, size, &whole);
	check(st, &whole, size);
	for (i = 1; i <= size; i++) {
		pst = proxy_parse(in, i, &part);
		check(pst, &part, i);
		if (pst != PROXY_AGAIN)
			break;
	}
	if (size > 0) {
		assert(pst == st);
		if (st == PROXY_DONE) {
			assert(i == whole.len && part.len == whole.len);
			assert(part.command == whole.command &&
			    part.version == whole.version);
			assert(memcmp(&part.src, &whole.src,
			    sizeof(whole.src)) == 0);
		}
	}
	free(in);
	return 0;
}
