/*
 * fuzz_command.c — libFuzzer target: one SMTP command line through every
 * parser the session uses on it.
 *
 * Beyond "no crash, no sanitizer report", it checks the properties the
 * rest of the server relies on: an accepted mailbox has no control bytes
 * (it goes into headers and logs), fits its bounds, and parses again to
 * itself; every refusal is a well-formed 5xx.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_path(const struct smtp_path *p)
{
	size_t n = strlen(p->mailbox);
	struct smtp_path again;

	assert(n + 2 <= SMTP_PATH_MAX);
	for (size_t i = 0; i < n; i++)
		assert((unsigned char)p->mailbox[i] >= 0x20 &&
		    p->mailbox[i] != 0x7f);
	if (!p->null && !p->postmaster) {
		assert(smtp_parse_mailbox(p->mailbox, n, &again) == 0);
		assert(strcmp(again.mailbox, p->mailbox) == 0);
		assert(p->local_len > 0 && p->local_len <= SMTP_LOCAL_PART_MAX);
		assert(p->mailbox[p->local_len] == '@');
	}
}

static void
check_err(const struct smtp_err *e)
{
	assert(e->code >= 500 && e->code <= 599);
	assert(e->ecode != NULL && e->ecode[0] == '5');
	assert(e->text != NULL && strchr(e->text, '\n') == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy without a terminator: ASan sees any overread. */
	char *line = malloc(size ? size : 1);
	struct smtp_cmd cmd;
	struct smtp_path path;
	struct smtp_params params;
	struct smtp_err err;
	struct smtp_mail_opts opts;
	struct smtp_ext ext = { true, true, true, true };
	uint64_t bsize;
	bool last;

	memcpy(line, data, size);
	smtp_parse_command(line, size, &cmd);
	assert(cmd.arg >= line && cmd.arg + cmd.arglen <= line + size);

	for (int kind = 0; kind < 2; kind++) {
		if (smtp_parse_path_arg(cmd.arg, cmd.arglen, kind == 0 ?
		    SMTP_PATH_REVERSE : SMTP_PATH_FORWARD, &path, &params,
		    &err) == 0) {
			check_path(&path);
			assert(params.n <= SMTP_PARAMS_MAX);
			if (params.n > 0)
				assert(params.raw >= cmd.arg && params.raw +
				    params.rawlen <= cmd.arg + cmd.arglen);
			if (smtp_parse_mail_params(&params, &ext, &opts, &err) != 0)
				check_err(&err);
			else if (opts.has_auth)
				for (const char *a = opts.auth; *a; a++)
					assert((unsigned char)*a >= 0x20);
		} else {
			check_err(&err);
		}
	}
	if (smtp_parse_helo(cmd.arg, cmd.arglen, &err) != 0)
		check_err(&err);
	if (smtp_parse_bdat(cmd.arg, cmd.arglen, &bsize, &last, &err) != 0)
		check_err(&err);
	free(line);
	return 0;
}
