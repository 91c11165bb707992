/* Minimal JSON output helpers: torsieve writes JSON, it never parses it. */
#ifndef TORSIEVE_JSON_H
#define TORSIEVE_JSON_H

#include <stdio.h>

/* Writes s as a JSON string literal, quotes included. Bytes that are not
 * printable ASCII are escaped as \u00XX, so any file name comes out valid. */
void ts_json_string(FILE *out, const char *s);

#endif
