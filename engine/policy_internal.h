/* Shared by the policy lexer, parser and bpf glue. */
#ifndef TORSIEVE_POLICY_INTERNAL_H
#define TORSIEVE_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "torsieve/policy.h"

enum ts_token_kind {
	TOK_END,
	TOK_NEWLINE,
	TOK_WORD,
	TOK_STRING,
	TOK_LISTREF, /* $name; start/len is the name */
	TOK_LBRACE,
	TOK_RBRACE,
	TOK_COMMA,
	TOK_EQUALS,
	TOK_BANG,
	TOK_BAD_STRING,
	TOK_BAD_CHAR,
};

struct ts_token {
	enum ts_token_kind kind;
	const char *start;
	size_t len;
	uint32_t line, col;
	/* An item that came from a named list: the $reference it came through
	 * at the place of use, for messages. */
	const char *via;
	size_t via_len;
	uint32_t via_line, via_col;
};

struct ts_lexer {
	const char *text;
	size_t len, pos;
	uint32_t line, col;
	uint32_t brace_depth;
	struct ts_token tok; /* the current token */
};

void ts_lex_init(struct ts_lexer *lx, const char *text, size_t len);
void ts_lex_next(struct ts_lexer *lx);
bool ts_tok_is(const struct ts_token *t, const char *word);
void ts_tok_describe(const struct ts_token *t, char *buf, size_t len);

/* Compile a rule's bpf expression; on failure write libpcap's reason. */
int ts_bpf_compile(struct ts_rule *r, char *err, size_t errlen);
void ts_bpf_free(struct ts_rule *r);
bool ts_bpf_match(const struct ts_rule *r, const struct ts_match_input *in);

#endif
