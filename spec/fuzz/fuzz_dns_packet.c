/*
 * fuzz_dns_packet.c — libFuzzer target: src/dns/dns_parse.c, the reply
 * packet to struct dns_result conversion (CNAME chains, compressed names
 * in MX/PTR/CNAME data, TXT strings, TLSA, the caps).
 *
 * Input: one octet choosing the asked type, one octet for the DNSSEC
 * state libunbound reports (0 insecure, 1 bogus, 2 secure), then the
 * packet.  Every result must keep the module's promises: a known status,
 * records only with DNS_OK and never more than DNS_ANSWERS_MAX, names and
 * texts within their bounds and NUL-terminated, TXT strings adding up to
 * the joined text, no records in a bogus result.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "dns/dns_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int types[] = {
	DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_TXT, DNS_T_PTR, DNS_T_CNAME,
	DNS_T_TLSA, DNS_T_NS, DNS_T_SOA,
};

static void
check_name(const char *s)
{
	assert(s != NULL);
	assert(strnlen(s, DNS_NAME_MAX) < DNS_NAME_MAX);
	assert(s[0] != '\0');
}

static void
check(const struct dns_result *r, int type)
{
	assert(r->status <= DNS_ERROR);
	assert(r->nrr <= DNS_ANSWERS_MAX);
	assert((r->status == DNS_OK) == (r->nrr > 0));
	assert(!r->bogus || (r->nrr == 0 && r->why_bogus[0] != '\0'));
	assert(strnlen(r->error, DNS_ERROR_MAX) < DNS_ERROR_MAX);
	if (r->canonname != NULL)
		check_name(r->canonname);
	for (size_t i = 0; i < r->nrr; i++) {
		const struct dns_rr *rr = &r->rr[i];
		size_t sum = 0;

		assert(rr->type == type);
		switch (type) {
		case DNS_T_A:
		case DNS_T_AAAA:
			assert(rr->addr.text[0] != '\0');
			break;
		case DNS_T_MX:
			assert(rr->mx.preference <= 65535);
			check_name(rr->mx.exchange);
			break;
		case DNS_T_PTR:
		case DNS_T_CNAME:
		case DNS_T_NS:
			check_name(rr->ptr.name);
			break;
		case DNS_T_TXT:
			assert(rr->txt.len <= DNS_TXT_MAX);
			assert(rr->txt.text[rr->txt.len] == '\0');
			for (size_t k = 0; k < rr->txt.nstrings; k++) {
				assert(rr->txt.strings[k].len <= 255);
				assert(rr->txt.strings[k].s[rr->txt.strings[k].len]
				    == '\0');
				sum += rr->txt.strings[k].len;
			}
			assert(sum == rr->txt.len);
			break;
		case DNS_T_TLSA:
			assert(rr->tlsa.len >= 1 && rr->tlsa.len <= DNS_RDATA_MAX);
			break;
		default:
			assert(rr->raw.len <= DNS_RDATA_MAX);
			break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_result *r;
	int type;

	if (size < 2)
		return 0;
	type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	r = dns_result_from_packet("fuzz.test", type, 0, data + 2,
	    (int)(size - 2), data[1] % 3, data[1] % 3 == 1 ? "bogus" : NULL);
	check(r, type);
	dns_result_free(r);
	return 0;
}
