/*
 * Replays a fuzz corpus through a harness without libFuzzer, so every
 * corpus runs in the normal (sanitizer) test build. Arguments are files or
 * directories of files; prints how many inputs ran.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		perror(path);
		return -1;
	}
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *grown = realloc(buf, cap);
			if (!grown) {
				fprintf(stderr, "%s: out of memory\n", path);
				free(buf);
				fclose(fp);
				return -1;
			}
			buf = grown;
		}
		size_t n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (n == 0)
			break;
	}
	int failed = ferror(fp);
	fclose(fp);
	if (failed) {
		fprintf(stderr, "%s: read error\n", path);
		free(buf);
		return -1;
	}
	/* An exactly-sized copy, so ASan sees reads past the input. */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	if (len)
		memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_path(const char *path, unsigned long *count)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return replay_file(path);
	}
	struct dirent **entries;
	int n = scandir(path, &entries, NULL, NULL);
	if (n < 0) {
		perror(path);
		return -1;
	}
	char **names = calloc((size_t)n + 1, sizeof(*names));
	int kept = 0, rc = 0;
	for (int i = 0; i < n; i++) {
		if (entries[i]->d_name[0] != '.' && names)
			names[kept++] = strdup(entries[i]->d_name);
		free(entries[i]);
	}
	free(entries);
	if (!names)
		return -1;
	qsort(names, (size_t)kept, sizeof(*names), by_name);
	for (int i = 0; i < kept; i++) {
		char full[4096];
		if (names[i] &&
		    snprintf(full, sizeof(full), "%s/%s", path, names[i]) < (int)sizeof(full))
			if (replay_path(full, count) != 0)
				rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned long count = 0;
	int rc = 0;
	for (int i = 1; i < argc; i++)
		if (replay_path(argv[i], &count) != 0)
			rc = 1;
	printf("replayed %lu inputs\n", count);
	return rc;
}
