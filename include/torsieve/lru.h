/*
 * A list in use order (oldest first), threaded through the entries it
 * holds: no allocation, O(1) to move an entry to the newest end or take
 * it out. An entry embeds a struct ts_lru_node and finds itself back with
 * TS_LRU_ENTRY.
 */
#ifndef TORSIEVE_LRU_H
#define TORSIEVE_LRU_H

#include <stddef.h>

struct ts_lru_node {
	struct ts_lru_node *older, *newer;
};

struct ts_lru {
	struct ts_lru_node *oldest, *newest;
};

#define TS_LRU_ENTRY(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

/* Take n out (it must be in l). */
static inline void ts_lru_unlink(struct ts_lru *l, struct ts_lru_node *n)
{
	if (n->older)
		n->older->newer = n->newer;
	else
		l->oldest = n->newer;
	if (n->newer)
		n->newer->older = n->older;
	else
		l->newest = n->older;
	n->older = n->newer = NULL;
}

/* Put n (in no list) at the newest end. */
static inline void ts_lru_push(struct ts_lru *l, struct ts_lru_node *n)
{
	n->older = l->newest;
	n->newer = NULL;
	if (l->newest)
		l->newest->newer = n;
	else
		l->oldest = n;
	l->newest = n;
}

#endif
