// tests/process/cxx_new_delete.cpp - C++ operator new/delete of libtcm.so under LD_PRELOAD.
//
// Run as `env LD_PRELOAD=libtcm.so cxx_new_delete`. Checks: operator new is defined in
// libtcm.so (dladdr); plain, array, sized (-fsized-deallocation), aligned (alignas(256)
// types, explicit std::align_val_t) and nothrow forms allocate usable, correctly aligned
// memory; nothrow new of a huge size returns nullptr; throwing new of a huge size throws
// std::bad_alloc; a new_handler is called exactly once and, once it uninstalls itself,
// the next failure throws; std::vector/std::string/std::map workloads across threads
// keep their contents. Every check prints what it saw and the program exits 1 on the
// first mismatch (no assert(): the checks stay under NDEBUG). TCM_TESTING_EXPECT_LIB_NAME
// overrides the expected library file name (default libtcm.so).
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <thread>
#include <vector>

namespace {

int checks_run = 0;

#define CHECK(cond, ...)                                                          \
	do {                                                                      \
		checks_run++;                                                     \
		if (!(cond)) {                                                    \
			std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, \
			             #cond);                                          \
			std::fprintf(stderr, __VA_ARGS__);                            \
			std::fprintf(stderr, "\n");                                   \
			std::exit(1);                                                 \
		}                                                                 \
	} while (0)

// Keeps the compiler from eliding a new/delete pair (allowed since C++14).
void escape(void *p)
{
	__asm__ volatile("" : : "g"(p) : "memory");
}

volatile std::size_t huge_size = SIZE_MAX / 2;  // volatile: no compile-time folding

bool is_aligned(const void *p, std::size_t a)
{
	return (reinterpret_cast<std::uintptr_t>(p) & (a - 1)) == 0;
}

// What [basic.stc.dynamic.allocation] promises for a request of n bytes: alignment for
// any fundamental type that fits, i.e. min(__STDCPP_DEFAULT_NEW_ALIGNMENT__, floor2(n)).
std::size_t new_alignment_for(std::size_t n)
{
	std::size_t a = __STDCPP_DEFAULT_NEW_ALIGNMENT__;
	while (a > 1 && a > n)
		a /= 2;
	return a;
}

const char *expected_lib_name()
{
	const char *name = std::getenv("TCM_TESTING_EXPECT_LIB_NAME");
	return name != nullptr && name[0] != '\0' ? name : "libtcm.so";
}

bool path_names_lib(const char *path, const char *lib)
{
	std::size_t n = std::strlen(path), m = std::strlen(lib);
	if (n < m || std::strcmp(path + n - m, lib) != 0)
		return false;
	return n == m || path[n - m - 1] == '/';
}

const char *object_of(void *addr)
{
	Dl_info info;
	if (dladdr(addr, &info) == 0 || info.dli_fname == nullptr)
		return "(dladdr failed)";
	return info.dli_fname;
}

void test_operator_new_served_by_tcm()
{
	const char *lib = expected_lib_name();
	struct { const char *what; void *addr; } fns[] = {
		{ "operator new(size_t)",
		  reinterpret_cast<void *>(static_cast<void *(*)(std::size_t)>(&::operator new)) },
		{ "operator new[](size_t)",
		  reinterpret_cast<void *>(static_cast<void *(*)(std::size_t)>(&::operator new[])) },
		{ "operator delete(void*)",
		  reinterpret_cast<void *>(static_cast<void (*)(void *) noexcept>(&::operator delete)) },
		{ "operator delete(void*, size_t)",
		  reinterpret_cast<void *>(
			  static_cast<void (*)(void *, std::size_t) noexcept>(&::operator delete)) },
		{ "operator new(size_t, align_val_t)",
		  reinterpret_cast<void *>(
			  static_cast<void *(*)(std::size_t, std::align_val_t)>(&::operator new)) },
		{ "operator delete(void*, align_val_t)",
		  reinterpret_cast<void *>(
			  static_cast<void (*)(void *, std::align_val_t) noexcept>(&::operator delete)) },
	};
	for (const auto &f : fns) {
		const char *obj = object_of(f.addr);
		std::printf("%s is defined in %s\n", f.what, obj);
		CHECK(path_names_lib(obj, lib), "%s resolves to %s, expected %s", f.what, obj, lib);
	}
}

void test_plain_and_array()
{
	for (std::size_t n = 1; n <= 1 << 20; n = n * 3 + 1) {
		char *p = new char[n];
		escape(p);
		CHECK(is_aligned(p, new_alignment_for(n)), "new char[%zu] = %p not %zu-aligned", n,
		      static_cast<void *>(p), new_alignment_for(n));
		std::memset(p, 0x5a, n);
		delete[] p;
	}
	for (int i = 0; i < 1000; i++) {
		auto *v = new std::uint64_t(static_cast<std::uint64_t>(i) * 7);
		escape(v);
		CHECK(*v == static_cast<std::uint64_t>(i) * 7, "value lost");
		delete v;
	}
	auto *big = new std::uint32_t[5 * 1024 * 1024 / 4];  // a large (own span) block
	escape(big);
	for (std::size_t i = 0; i < 5 * 1024 * 1024 / 4; i += 1024)
		big[i] = static_cast<std::uint32_t>(i);
	for (std::size_t i = 0; i < 5 * 1024 * 1024 / 4; i += 1024)
		CHECK(big[i] == i, "large new[] element %zu lost", i);
	delete[] big;
}

void test_sized_delete()
{
	for (std::size_t n = 1; n <= 2 * 1024 * 1024; n = n * 2 + 3) {
		void *p = ::operator new(n);
		escape(p);
		std::memset(p, 1, n);
		::operator delete(p, n);
		void *a = ::operator new[](n);
		escape(a);
		std::memset(a, 2, n);
		::operator delete[](a, n);
	}
	struct S { char c[40]; };
	S *s = new S;  // with -fsized-deallocation, delete passes sizeof(S)
	escape(s);
	delete s;
}

struct alignas(256) Aligned256 {
	unsigned char bytes[300];
};

void test_aligned_types()
{
	std::vector<Aligned256 *> keep;
	for (int i = 0; i < 100; i++) {
		Aligned256 *p = new Aligned256;
		escape(p);
		CHECK(is_aligned(p, 256), "new Aligned256 = %p", static_cast<void *>(p));
		std::memset(p->bytes, i, sizeof(p->bytes));
		keep.push_back(p);
	}
	for (int i = 0; i < 100; i++) {
		CHECK(keep[i]->bytes[299] == static_cast<unsigned char>(i), "aligned object %d lost", i);
		delete keep[i];
	}
	for (std::size_t n = 1; n <= 4096; n *= 4) {
		Aligned256 *a = new Aligned256[n];
		escape(a);
		CHECK(is_aligned(a, 256), "new Aligned256[%zu] = %p", n, static_cast<void *>(a));
		for (std::size_t i = 0; i < n; i++)
			CHECK(is_aligned(&a[i], 256), "element %zu misaligned", i);
		std::memset(static_cast<void *>(a), 3, n * sizeof(Aligned256));
		delete[] a;
	}
	for (std::size_t al = 16; al <= 1 << 20; al *= 2) {
		void *p = ::operator new(100, std::align_val_t(al));
		escape(p);
		CHECK(is_aligned(p, al), "operator new(100, align %zu) = %p", al, p);
		std::memset(p, 4, 100);
		::operator delete(p, 100, std::align_val_t(al));
		p = ::operator new[](al * 3, std::align_val_t(al));
		escape(p);
		CHECK(is_aligned(p, al), "operator new[](%zu, align %zu) = %p", al * 3, al, p);
		std::memset(p, 5, al * 3);
		::operator delete[](p, std::align_val_t(al));
	}
}

void test_nothrow()
{
	void *p = ::operator new(64, std::nothrow);
	escape(p);
	CHECK(p != nullptr, "nothrow new(64) failed");
	::operator delete(p, std::nothrow);
	p = ::operator new[](64, std::nothrow);
	CHECK(p != nullptr, "nothrow new[](64) failed");
	::operator delete[](p, std::nothrow);
	p = ::operator new(64, std::align_val_t(4096), std::nothrow);
	CHECK(p != nullptr && is_aligned(p, 4096), "aligned nothrow new = %p", p);
	::operator delete(p, std::align_val_t(4096), std::nothrow);
	p = ::operator new[](10000, std::align_val_t(512), std::nothrow);
	CHECK(p != nullptr && is_aligned(p, 512), "aligned nothrow new[] = %p", p);
	::operator delete[](p, std::align_val_t(512), std::nothrow);

	std::size_t n = huge_size;
	p = ::operator new(n, std::nothrow);
	CHECK(p == nullptr, "nothrow new(%zu) = %p, expected nullptr", n, p);
	p = ::operator new[](n, std::nothrow);
	CHECK(p == nullptr, "nothrow new[](%zu) = %p, expected nullptr", n, p);
	p = ::operator new(n, std::align_val_t(64), std::nothrow);
	CHECK(p == nullptr, "aligned nothrow new(%zu) = %p, expected nullptr", n, p);
	p = ::operator new[](n, std::align_val_t(64), std::nothrow);
	CHECK(p == nullptr, "aligned nothrow new[](%zu) = %p, expected nullptr", n, p);
}

template <typename F> bool throws_bad_alloc(F f)
{
	try {
		f();
	} catch (const std::bad_alloc &) {
		return true;
	}
	return false;
}

void test_throwing_new_huge()
{
	std::size_t n = huge_size;
	CHECK(throws_bad_alloc([n] { escape(::operator new(n)); }), "new(%zu) did not throw", n);
	CHECK(throws_bad_alloc([n] { escape(::operator new[](n)); }), "new[](%zu) did not throw", n);
	CHECK(throws_bad_alloc([n] { escape(::operator new(n, std::align_val_t(256))); }),
	      "aligned new(%zu) did not throw", n);
	CHECK(throws_bad_alloc([n] { escape(::operator new[](n, std::align_val_t(256))); }),
	      "aligned new[](%zu) did not throw", n);
	CHECK(throws_bad_alloc([n] { escape(new char[n]); }), "new char[%zu] did not throw", n);
	// The allocator works after the failures.
	void *p = ::operator new(100);
	escape(p);
	::operator delete(p);
}

int handler_calls = 0;

// Called when new fails: counts itself and uninstalls itself, so the retry that
// follows fails again with no handler and must throw std::bad_alloc.
void counting_handler()
{
	handler_calls++;
	std::set_new_handler(nullptr);
}

void *reserve = nullptr;
int reserve_handler_calls = 0;

// Frees a reserve and lets new retry; a second call means new kept failing.
void reserve_handler()
{
	reserve_handler_calls++;
	std::free(reserve);
	reserve = nullptr;
	if (reserve_handler_calls > 1)
		std::set_new_handler(nullptr);
}

void test_new_handler()
{
	std::size_t n = huge_size;
	handler_calls = 0;
	std::set_new_handler(counting_handler);
	bool threw = throws_bad_alloc([n] { escape(::operator new(n)); });
	CHECK(handler_calls == 1, "new_handler called %d times, expected 1", handler_calls);
	CHECK(threw, "new(%zu) did not throw bad_alloc after the handler uninstalled itself", n);
	CHECK(std::get_new_handler() == nullptr, "handler still installed");

	handler_calls = 0;
	std::set_new_handler(counting_handler);
	threw = throws_bad_alloc([n] { escape(::operator new[](n, std::align_val_t(64))); });
	CHECK(handler_calls == 1, "aligned new[]: new_handler called %d times, expected 1",
	      handler_calls);
	CHECK(threw, "aligned new[] did not throw");

	// The nothrow form also consults the handler, then returns nullptr.
	handler_calls = 0;
	std::set_new_handler(counting_handler);
	void *p = ::operator new(n, std::nothrow);
	CHECK(p == nullptr, "nothrow new with handler = %p", p);
	CHECK(handler_calls == 1, "nothrow new: new_handler called %d times, expected 1",
	      handler_calls);

	// A handler that is installed while new succeeds is not called.
	reserve = std::malloc(1 << 20);
	reserve_handler_calls = 0;
	std::set_new_handler(reserve_handler);
	p = ::operator new(1 << 20);
	escape(p);
	CHECK(reserve_handler_calls == 0, "handler called %d times on success", reserve_handler_calls);
	::operator delete(p);
	std::set_new_handler(nullptr);
	std::free(reserve);
}

void container_workload(unsigned seed, unsigned long *checksum)
{
	std::map<std::string, std::vector<int>> m;
	unsigned long sum = 0;
	for (int round = 0; round < 20000; round++) {
		seed = seed * 1103515245u + 12345u;
		std::string key = "key-" + std::to_string(seed % 5000) + std::string(seed % 37, 'x');
		auto &v = m[key];
		v.push_back(static_cast<int>(round));
		if (v.size() > 50)
			v.erase(v.begin(), v.begin() + 25);
		if (seed % 11 == 0)
			m.erase(m.begin());
	}
	for (const auto &kv : m) {
		for (char c : kv.first)
			sum = sum * 31 + static_cast<unsigned char>(c);
		for (int x : kv.second)
			sum = sum * 17 + static_cast<unsigned>(x);
	}
	*checksum = sum;
}

void test_containers()
{
	std::vector<std::string> strings;
	for (int i = 0; i < 100000; i++)
		strings.push_back(std::string(static_cast<std::size_t>(i % 300), static_cast<char>('a' + i % 26)));
	for (int i = 0; i < 100000; i++)
		CHECK(strings[i].size() == static_cast<std::size_t>(i % 300) &&
		      (strings[i].empty() || strings[i].back() == 'a' + i % 26), "string %d corrupted", i);
	strings.clear();
	strings.shrink_to_fit();

	// The same workload, single-threaded and on 4 threads, must give the same sums.
	const int n_threads = 4;
	unsigned long expect[n_threads], got[n_threads];
	for (int t = 0; t < n_threads; t++)
		container_workload(static_cast<unsigned>(t + 1), &expect[t]);
	std::vector<std::thread> threads;
	for (int t = 0; t < n_threads; t++)
		threads.emplace_back(container_workload, static_cast<unsigned>(t + 1), &got[t]);
	for (auto &th : threads)
		th.join();
	for (int t = 0; t < n_threads; t++)
		CHECK(got[t] == expect[t], "thread %d checksum %lu != %lu", t, got[t], expect[t]);

	// Objects created on one thread, destroyed on another.
	auto *shared = new std::vector<std::string>(10000, std::string(100, 'z'));
	std::thread([shared] { delete shared; }).join();
}

}  // namespace

int main()
{
	test_operator_new_served_by_tcm();
	test_plain_and_array();
	test_sized_delete();
	test_aligned_types();
	test_nothrow();
	test_throwing_new_huge();
	test_new_handler();
	test_containers();
	std::printf("cxx_new_delete: all %d checks passed\n", checks_run);
	return 0;
}
