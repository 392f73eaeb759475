/*
 * memcpy and memmove for the runtime shim's static musl build (the images' binary).
 *
 * Why: musl's x86_64 memcpy starts every copy with `rep movsq`, and its memmove copies an
 * overlapping range backwards with `std; rep movsb; cld`; both cost tens of cycles per
 * call whatever the length. The shim's REST path makes a few short copies per cell
 * (number formatting, the response buffer), so in the static build the two took about a
 * third of the CPU time of a 100-row request (perf; glibc's: 5-7%).
 *
 * How: up to 64 bytes, everything is loaded into registers (head and tail loads that may
 * overlap) before anything is stored, which is right for any overlap. Longer copies move
 * 64-byte blocks with unaligned 16-byte SSE2 loads and stores, the block at the far end
 * loaded before the loop and stored after it; memmove walks backwards when the
 * destination starts inside the source. Long copies between ranges that do not overlap
 * use `rep movsb` (ERMS: as fast as vector loops from about 2 KiB).
 *
 * build.rs compiles this file for x86_64 musl targets only. The binaries that use it link
 * with `-Wl,--wrap=memcpy,--wrap=memmove` (runtime-shim/build.rs, and this crate's build.rs
 * for its tests): every reference to memcpy or memmove in any object, libc.a's included,
 * becomes one to __wrap_memcpy or __wrap_memmove, defined here, whatever the order of the
 * objects and libc.a on the link line; musl's memcpy.o and memmove.o are never taken.
 */
#include <stddef.h>
#include <stdint.h>

typedef uint16_t u16_unaligned __attribute__((may_alias, aligned(1)));
typedef uint32_t u32_unaligned __attribute__((may_alias, aligned(1)));
typedef uint64_t u64_unaligned __attribute__((may_alias, aligned(1)));
typedef long long v16 __attribute__((vector_size(16), may_alias, aligned(1)));

#define LOAD16(p) (*(const v16 *)(p))
#define STORE16(p, v) (*(v16 *)(p) = (v))

/* From this length, copies between disjoint ranges use `rep movsb`. */
#define REP_MOVSB_MIN 2048

void *__wrap_memcpy(void *restrict dst, const void *restrict src, size_t n);
void *__wrap_memmove(void *dst, const void *src, size_t n);

/* n <= 64 bytes; every load before the first store. */
static inline __attribute__((always_inline)) void
copy_short(unsigned char *d, const unsigned char *s, size_t n)
{
	if (n >= 16) {
		if (n > 32) {
			v16 a = LOAD16(s), b = LOAD16(s + 16);
			v16 c = LOAD16(s + n - 32), e = LOAD16(s + n - 16);
			STORE16(d, a);
			STORE16(d + 16, b);
			STORE16(d + n - 32, c);
			STORE16(d + n - 16, e);
		} else {
			v16 a = LOAD16(s), b = LOAD16(s + n - 16);
			STORE16(d, a);
			STORE16(d + n - 16, b);
		}
	} else if (n >= 8) {
		uint64_t a = *(const u64_unaligned *)s, b = *(const u64_unaligned *)(s + n - 8);
		*(u64_unaligned *)d = a;
		*(u64_unaligned *)(d + n - 8) = b;
	} else if (n >= 4) {
		uint32_t a = *(const u32_unaligned *)s, b = *(const u32_unaligned *)(s + n - 4);
		*(u32_unaligned *)d = a;
		*(u32_unaligned *)(d + n - 4) = b;
	} else if (n >= 2) {
		uint16_t a = *(const u16_unaligned *)s, b = *(const u16_unaligned *)(s + n - 2);
		*(u16_unaligned *)d = a;
		*(u16_unaligned *)(d + n - 2) = b;
	} else if (n == 1) {
		*d = *s;
	}
}

/*
 * n > 64, forwards: right when the ranges are disjoint or d < s. A block's loads come
 * after the stores of the blocks before it, which (d < s) only reach source bytes already
 * read; the last 64 bytes are read first, before any store.
 */
static void copy_forward(unsigned char *d, const unsigned char *s, size_t n)
{
	v16 t0 = LOAD16(s + n - 64), t1 = LOAD16(s + n - 48);
	v16 t2 = LOAD16(s + n - 32), t3 = LOAD16(s + n - 16);
	unsigned char *tail = d + n - 64;
	while (n > 64) {
		v16 a = LOAD16(s), b = LOAD16(s + 16), c = LOAD16(s + 32), e = LOAD16(s + 48);
		STORE16(d, a);
		STORE16(d + 16, b);
		STORE16(d + 32, c);
		STORE16(d + 48, e);
		d += 64;
		s += 64;
		n -= 64;
	}
	STORE16(tail, t0);
	STORE16(tail + 16, t1);
	STORE16(tail + 32, t2);
	STORE16(tail + 48, t3);
}

/*
 * n > 64, backwards: for s < d < s + n. Blocks from the end; a block's stores only reach
 * source bytes above the blocks still to be read; the first 64 bytes are read first.
 */
static void copy_backward(unsigned char *d, const unsigned char *s, size_t n)
{
	v16 h0 = LOAD16(s), h1 = LOAD16(s + 16), h2 = LOAD16(s + 32), h3 = LOAD16(s + 48);
	while (n > 64) {
		n -= 64;
		v16 a = LOAD16(s + n), b = LOAD16(s + n + 16);
		v16 c = LOAD16(s + n + 32), e = LOAD16(s + n + 48);
		STORE16(d + n, a);
		STORE16(d + n + 16, b);
		STORE16(d + n + 32, c);
		STORE16(d + n + 48, e);
	}
	STORE16(d, h0);
	STORE16(d + 16, h1);
	STORE16(d + 32, h2);
	STORE16(d + 48, h3);
}

static inline __attribute__((always_inline)) void
rep_movsb(unsigned char *d, const unsigned char *s, size_t n)
{
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

void *__wrap_memcpy(void *restrict dst, const void *restrict src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (n <= 64)
		copy_short(d, s, n);
	else if (n >= REP_MOVSB_MIN)
		rep_movsb(d, s, n);
	else
		copy_forward(d, s, n);
	return dst;
}

void *__wrap_memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	uintptr_t ahead = (uintptr_t)d - (uintptr_t)s; /* wraps when d < s */
	if (n <= 64)
		copy_short(d, s, n);
	else if (ahead < n)
		copy_backward(d, s, n);
	else if (n >= REP_MOVSB_MIN && (uintptr_t)s - (uintptr_t)d >= n)
		rep_movsb(d, s, n);
	else
		copy_forward(d, s, n);
	return dst;
}
