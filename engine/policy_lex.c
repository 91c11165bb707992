/* The policy lexer: words, strings, punctuation and line ends, with positions. */
#include <string.h>

#include "policy_internal.h"

static bool is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == ':' || c == '/' || c == '-' || c == '%';
}

void ts_lex_init(struct ts_lexer *lx, const char *text, size_t len)
{
	memset(lx, 0, sizeof(*lx));
	lx->text = text;
	lx->len = len;
	lx->line = 1;
	lx->col = 1;
}

static char peek_char(const struct ts_lexer *lx)
{
	return lx->pos < lx->len ? lx->text[lx->pos] : '\0';
}

static void advance(struct ts_lexer *lx)
{
	if (lx->text[lx->pos] == '\n') {
		lx->line++;
		lx->col = 1;
	} else {
		lx->col++;
	}
	lx->pos++;
}

/* Reads the next token into lx->tok. Inside braces, line ends are spaces. */
void ts_lex_next(struct ts_lexer *lx)
{
	struct ts_token *t = &lx->tok;
	for (;;) {
		char c = peek_char(lx);
		if (lx->pos < lx->len &&
		    (c == ' ' || c == '\t' || c == '\r' || (c == '\n' && lx->brace_depth > 0))) {
			advance(lx);
		} else if (c == '\\' && lx->pos + 1 < lx->len && lx->text[lx->pos + 1] == '\n') {
			advance(lx); /* a continued line */
			advance(lx);
		} else if (c == '\\' && lx->pos + 2 < lx->len && lx->text[lx->pos + 1] == '\r' &&
		           lx->text[lx->pos + 2] == '\n') {
			advance(lx); /* a continued line, CRLF */
			advance(lx);
			advance(lx);
		} else if (c == '#') {
			while (lx->pos < lx->len && peek_char(lx) != '\n')
				advance(lx);
		} else {
			break;
		}
	}
	t->via = NULL;
	t->line = lx->line;
	t->col = lx->col;
	t->start = lx->text + lx->pos;
	t->len = 0;
	if (lx->pos >= lx->len) {
		t->kind = TOK_END;
		return;
	}
	char c = peek_char(lx);
	if (c == '\n') {
		t->kind = TOK_NEWLINE;
		t->len = 1;
		advance(lx);
		return;
	}
	if (c == '"') {
		advance(lx);
		t->start = lx->text + lx->pos;
		while (lx->pos < lx->len && peek_char(lx) != '"' && peek_char(lx) != '\n')
			advance(lx);
		t->len = (size_t)(lx->text + lx->pos - t->start);
		if (peek_char(lx) != '"') {
			t->kind = TOK_BAD_STRING;
			return;
		}
		advance(lx);
		t->kind = TOK_STRING;
		return;
	}
	if (c == '$') {
		advance(lx);
		t->start = lx->text + lx->pos;
		while (lx->pos < lx->len && is_word_char(peek_char(lx)))
			advance(lx);
		t->len = (size_t)(lx->text + lx->pos - t->start);
		t->kind = TOK_LISTREF;
		if (t->len == 0) {
			t->start--; /* report the '$' itself */
			t->len = 1;
			t->kind = TOK_BAD_CHAR;
		}
		return;
	}
	if (is_word_char(c)) {
		while (lx->pos < lx->len && is_word_char(peek_char(lx)))
			advance(lx);
		t->len = (size_t)(lx->text + lx->pos - t->start);
		t->kind = TOK_WORD;
		return;
	}
	t->len = 1;
	advance(lx);
	switch (c) {
	case '{':
		lx->brace_depth++;
		t->kind = TOK_LBRACE;
		return;
	case '}':
		if (lx->brace_depth > 0)
			lx->brace_depth--;
		t->kind = TOK_RBRACE;
		return;
	case ',':
		t->kind = TOK_COMMA;
		return;
	case '=':
		t->kind = TOK_EQUALS;
		return;
	case '!':
		t->kind = TOK_BANG;
		return;
	default:
		t->kind = TOK_BAD_CHAR;
		return;
	}
}

bool ts_tok_is(const struct ts_token *t, const char *word)
{
	return t->kind == TOK_WORD && strlen(word) == t->len && memcmp(t->start, word, t->len) == 0;
}

/* How a token reads in an error message: 'word', "string", or a description. */
void ts_tok_describe(const struct ts_token *t, char *buf, size_t len)
{
	int n = t->len > 40 ? 40 : (int)t->len;
	switch (t->kind) {
	case TOK_END:
		snprintf(buf, len, "end of file");
		return;
	case TOK_NEWLINE:
		snprintf(buf, len, "end of line");
		return;
	case TOK_STRING:
		snprintf(buf, len, "\"%.*s\"", n, t->start);
		return;
	case TOK_BAD_STRING:
		snprintf(buf, len, "a string with no closing quote");
		return;
	case TOK_LISTREF:
		snprintf(buf, len, "'$%.*s'", n, t->start);
		return;
	case TOK_BAD_CHAR:
		if (t->start[0] == '$')
			snprintf(buf, len, "'$' without a list name");
		else if ((unsigned char)t->start[0] < 0x20 || (unsigned char)t->start[0] >= 0x7f)
			snprintf(buf, len, "byte 0x%02x", (unsigned char)t->start[0]);
		else
			snprintf(buf, len, "'%c'", t->start[0]);
		return;
	default:
		snprintf(buf, len, "'%.*s'%s", n, t->start, t->len > 40 ? "..." : "");
		return;
	}
}
