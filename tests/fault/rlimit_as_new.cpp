// tests/fault/rlimit_as_new.cpp - C++ operator new under libtcm.so when memory
// runs out, and for sizes no allocator can serve.
//
// "rounds": RLIMIT_AS is set to what the process uses plus 256 MiB; then, three
// rounds of: new char[1 MiB] until it throws (it must be std::bad_alloc), and
// while everything is held, nothrow new (plain and aligned) returns nullptr and
// a new_handler that frees a reserve is called once and lets new succeed; the
// same with 64-byte objects and with 64 KiB-aligned new. Everything is freed;
// every byte tcm mapped is accounted for in its stats, and rounds 2 and 3 must
// get as much as round 1, less a small tolerance.
// "huge": each throwing form of new with a size or alignment of 2^47..SIZE_MAX
// throws std::bad_alloc and each nothrow form returns nullptr, each call in a
// forked child so a crash is reported and the others still run.
#include "fault_process.h"

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace {

constexpr std::size_t kMiB = FAULT_MIB;
constexpr std::size_t kHeadroom = 256 * kMiB;
constexpr std::size_t kTolerance = kHeadroom / 8;
constexpr int kRounds = 3;

int failures = 0;

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fault_say("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fault_say(__VA_ARGS__);                               \
			fault_say("\n");                                      \
			failures++;                                           \
		}                                                             \
	} while (0)

// Held blocks are linked through their first word.
struct Link {
	Link *next;
};

enum class Form { kArray1MiB, kObject64, kAligned64KiB };
const char *const kFormNames[] = { "new char[1 MiB]", "new 64-byte object", "new 256 KiB, 64 KiB aligned" };

void *allocate(Form form)
{
	switch (form) {
	case Form::kArray1MiB:
		return new char[kMiB];
	case Form::kObject64:
		return ::operator new(64);
	case Form::kAligned64KiB:
		return ::operator new(256 * 1024, std::align_val_t(64 * 1024));
	}
	return nullptr;
}

void release(Form form, void *ptr)
{
	switch (form) {
	case Form::kArray1MiB:
		delete[] static_cast<char *>(ptr);
		break;
	case Form::kObject64:
		::operator delete(ptr, std::size_t(64));
		break;
	case Form::kAligned64KiB:
		::operator delete(ptr, std::align_val_t(64 * 1024));
		break;
	}
}

std::size_t form_bytes(Form form)
{
	return form == Form::kArray1MiB ? kMiB : form == Form::kObject64 ? 64 : 256 * 1024;
}

void *reserve = nullptr;
int handler_calls = 0;

void free_reserve()
{
	handler_calls++;
	std::free(reserve);
	reserve = nullptr;
	std::set_new_handler(nullptr);
}

// new of form until std::bad_alloc, then the nothrow and new_handler checks at
// the limit; returns the bytes obtained.
std::size_t exhaust(Form form)
{
	reserve = std::malloc(32 * kMiB);
	CHECK(reserve != nullptr, "no 32 MiB reserve");
	Link *held = nullptr;
	std::size_t obtained = 0;
	bool threw = false;
	while (obtained < 4 * kHeadroom) {
		void *ptr = nullptr;
		try {
			ptr = allocate(form);
		} catch (const std::bad_alloc &) {
			threw = true;
			break;
		} catch (...) {
			CHECK(false, "%s threw something other than std::bad_alloc", kFormNames[int(form)]);
			break;
		}
		CHECK(ptr != nullptr, "%s returned nullptr", kFormNames[int(form)]);
		if (ptr == nullptr)
			break;
		static_cast<Link *>(ptr)->next = held;
		held = static_cast<Link *>(ptr);
		obtained += form_bytes(form);
	}
	CHECK(threw, "%s: %zu MiB without std::bad_alloc", kFormNames[int(form)], obtained / kMiB);
	// At the limit: nothrow forms give nullptr, not an exception.
	void *nothrow = ::operator new(64 * kMiB, std::nothrow);
	CHECK(nothrow == nullptr, "nothrow new(64 MiB) at the limit = %p", nothrow);
	::operator delete(nothrow);
	void *nothrow_aligned = ::operator new(64 * kMiB, std::align_val_t(4096), std::nothrow);
	CHECK(nothrow_aligned == nullptr, "nothrow aligned new(64 MiB) at the limit = %p", nothrow_aligned);
	::operator delete(nothrow_aligned, std::align_val_t(4096));
	// A new_handler that frees the reserve: called once, then new succeeds.
	handler_calls = 0;
	std::set_new_handler(free_reserve);
	char *rescued = nullptr;
	try {
		rescued = new char[8 * kMiB];
	} catch (const std::bad_alloc &) {
		CHECK(false, "new char[8 MiB] threw although the new_handler freed 32 MiB");
	}
	std::set_new_handler(nullptr);
	CHECK(handler_calls == 1, "the new_handler ran %d times", handler_calls);
	delete[] rescued;
	std::free(reserve);
	reserve = nullptr;
	while (held != nullptr) {
		Link *next = held->next;
		release(form, held);
		held = next;
	}
	return obtained;
}

int rounds()
{
	if (!fault_limit_address_space(kHeadroom))
		return 1;
	const Form forms[] = { Form::kArray1MiB, Form::kObject64, Form::kAligned64KiB };
	std::size_t obtained[kRounds][3] = {};
	for (int round = 0; round < kRounds; round++) {
		for (int f = 0; f < 3; f++)
			obtained[round][f] = exhaust(forms[f]);
		CHECK(fault_tcm_address_space_accounted("after a round"), "address space lost");
	}
	for (int f = 0; f < 3; f++) {
		fault_say("%-30s %6zu %6zu %6zu MiB\n", kFormNames[f], obtained[0][f] / kMiB, obtained[1][f] / kMiB,
			  obtained[2][f] / kMiB);
		for (int round = 1; round < kRounds; round++)
			CHECK(obtained[round][f] + kTolerance >= obtained[0][f],
			      "%s: round %d got %zu MiB, round 1 %zu MiB", kFormNames[f], round + 1,
			      obtained[round][f] / kMiB, obtained[0][f] / kMiB);
		CHECK(obtained[0][f] >= kHeadroom / 4, "%s: only %zu MiB", kFormNames[f], obtained[0][f] / kMiB);
	}
	return failures == 0 ? 0 : 1;
}

// ---- huge sizes ------------------------------------------------------------------------------------

struct HugeCase {
	const char *name;
	int form;            // see call_huge
	std::size_t size, alignment;
};

const HugeCase kHuge[] = {
	{ "new(SIZE_MAX)", 0, SIZE_MAX, 0 },
	{ "new(PTRDIFF_MAX)", 0, PTRDIFF_MAX, 0 },
	{ "new(2^47)", 0, std::size_t(1) << 47, 0 },
	{ "new(2^56)", 0, std::size_t(1) << 56, 0 },
	{ "new[](2^56)", 1, std::size_t(1) << 56, 0 },
	{ "new[](SIZE_MAX)", 1, SIZE_MAX, 0 },
	{ "new(2^56, align 64)", 2, std::size_t(1) << 56, 64 },
	{ "new(64, align 2^56)", 2, 64, std::size_t(1) << 56 },
	{ "new(64, align 2^63)", 2, 64, std::size_t(1) << 63 },
	{ "new[](SIZE_MAX, align 4096)", 3, SIZE_MAX, 4096 },
	{ "new(2^56, nothrow)", 4, std::size_t(1) << 56, 0 },
	{ "new(SIZE_MAX, nothrow)", 4, SIZE_MAX, 0 },
	{ "new[](2^56, nothrow)", 5, std::size_t(1) << 56, 0 },
	{ "new(2^56, align 64, nothrow)", 6, std::size_t(1) << 56, 64 },
	{ "new(64, align 2^56, nothrow)", 6, 64, std::size_t(1) << 56 },
};

void call_huge(const void *arg, char *line, std::size_t line_bytes)
{
	const HugeCase *c = static_cast<const HugeCase *>(arg);
	void *ptr = nullptr;
	try {
		switch (c->form) {
		case 0: ptr = ::operator new(c->size); break;
		case 1: ptr = ::operator new[](c->size); break;
		case 2: ptr = ::operator new(c->size, std::align_val_t(c->alignment)); break;
		case 3: ptr = ::operator new[](c->size, std::align_val_t(c->alignment)); break;
		case 4: ptr = ::operator new(c->size, std::nothrow); break;
		case 5: ptr = ::operator new[](c->size, std::nothrow); break;
		case 6: ptr = ::operator new(c->size, std::align_val_t(c->alignment), std::nothrow); break;
		}
		std::snprintf(line, line_bytes, ptr == nullptr ? "nullptr" : "returned memory");
	} catch (const std::bad_alloc &) {
		std::snprintf(line, line_bytes, "std::bad_alloc");
	} catch (...) {
		std::snprintf(line, line_bytes, "another exception");
	}
	// The allocator still works afterwards.
	char *after = new (std::nothrow) char[3 * kMiB];
	std::size_t used = std::strlen(line);
	std::snprintf(line + used, line_bytes - used, after != nullptr ? "" : ", then new(3 MiB) failed");
	delete[] after;
}

int huge()
{
	for (const HugeCase &c : kHuge) {
		char result[256];
		fault_run_in_child(call_huge, &c, result, sizeof(result));
		const char *expected = c.form >= 4 ? "nullptr" : "std::bad_alloc";
		bool ok = std::strcmp(result, expected) == 0;
		fault_say("%s %-30s %s%s%s\n", ok ? "ok  " : "FAIL", c.name, result, ok ? "" : "; expected ",
			  ok ? "" : expected);
		failures += ok ? 0 : 1;
	}
	return failures == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc != 2 || (std::strcmp(argv[1], "rounds") != 0 && std::strcmp(argv[1], "huge") != 0)) {
		fault_say("usage: %s rounds|huge\n", argv[0]);
		return 2;
	}
	if (!fault_malloc_is_tcm())
		return 1;
	return std::strcmp(argv[1], "rounds") == 0 ? rounds() : huge();
}
