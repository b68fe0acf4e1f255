/*
 * fuzz_address.c — libFuzzer target: mailbox syntax and UTF-8 validation.
 *
 * An accepted mailbox equals its input, has no control bytes, respects the
 * RFC 5321 bounds, and is valid UTF-8 exactly when it is not plain ASCII.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size ? size : 1);
	struct smtp_path p;
	bool ascii = true;

	memcpy(s, data, size);
	for (size_t i = 0; i < size; i++)
		if ((unsigned char)s[i] >= 0x80)
			ascii = false;
	if (ascii)
		assert(smtp_utf8_valid((const unsigned char *)s, size));
	if (smtp_parse_mailbox(s, size, &p) == 0) {
		assert(strlen(p.mailbox) == size);
		assert(memcmp(p.mailbox, s, size) == 0);
		assert(size + 2 <= SMTP_PATH_MAX);
		assert(p.utf8 == !ascii);
		if (p.utf8)
			assert(smtp_utf8_valid((const unsigned char *)s, size));
		for (size_t i = 0; i < size; i++)
			assert((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
	}
	free(s);
	return 0;
}
