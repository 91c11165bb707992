/* SHA-256 against FIPS 180-4's examples and a million 'a's. */
#include "check.h"
#include "torsieve/sha256.h"

static void digest(const char *msg, size_t len, size_t chunk, char out[65])
{
	struct ts_sha256 s;
	ts_sha256_init(&s);
	for (size_t i = 0; i < len; i += chunk)
		ts_sha256_update(&s, (const uint8_t *)msg + i, len - i < chunk ? len - i : chunk);
	ts_sha256_hex(&s, out);
}

static void test_vectors(void)
{
	char out[65];
	digest("", 0, 1, out);
	CHECK_EQ_STR(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	digest("abc", 3, 1, out);
	CHECK_EQ_STR(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	static const char two_blocks[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	for (size_t chunk = 1; chunk <= 64; chunk *= 3) {
		digest(two_blocks, sizeof(two_blocks) - 1, chunk, out);
		CHECK_EQ_STR(out,
		             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	}
	static char million[1000000];
	memset(million, 'a', sizeof(million));
	digest(million, sizeof(million), 4096, out);
	CHECK_EQ_STR(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

int main(void)
{
	RUN(test_vectors);
	return check_exit_code();
}
