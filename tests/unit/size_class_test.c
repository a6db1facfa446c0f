/* tests/unit/size_class_test.c - size classes: every small size maps to the
 * tightest class, and each class's object size, batch and span obey the
 * invariants of core/size_class.h. Pure table checks; no allocation. */
#include "unit.h"

#include "os.h"
#include "size_class.h"

static size_t span_bytes_of(unsigned size_class)
{
	return (size_t)tcm_size_classes[size_class].span_pages * TCM_PAGE_BYTES;
}

static void every_size_gets_tightest_class(void **state)
{
	(void)state;
	tcm_size_class_init();
	for (size_t size = 0; size <= TCM_SMALL_MAX_BYTES; size++) {
		unsigned size_class = tcm_size_class_of(size);
		if (size_class < 1 || size_class >= TCM_SIZE_CLASS_COUNT)
			fail_msg("size %zu -> class %u out of range", size, size_class);
		size_t object_bytes = tcm_size_classes[size_class].object_bytes;
		size_t served = size == 0 ? 1 : size;
		if (object_bytes < served)
			fail_msg("size %zu -> class %u of %zu bytes: too small", size, size_class, object_bytes);
		if (size_class > 1 && tcm_size_classes[size_class - 1].object_bytes >= served)
			fail_msg("size %zu -> class %u, but class %u (%u bytes) fits: not the tightest",
				 size, size_class, size_class - 1, tcm_size_classes[size_class - 1].object_bytes);
		if (object_bytes % TCM_MIN_ALIGN_BYTES != 0)
			fail_msg("class %u: %zu bytes is not a multiple of 16", size_class, object_bytes);
		/* At most 25% internal waste above 128 B: object_bytes <= 1.25 * size. */
		if (size > 128 && (object_bytes - size) * 4 > size)
			fail_msg("size %zu -> %zu bytes: waste above 25%%", size, object_bytes);
	}
}

static void table_matches_formula(void **state)
{
	(void)state;
	tcm_size_class_init();
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++) {
		assert_int_equal(tcm_size_class_bytes_of(size_class), tcm_size_classes[size_class].object_bytes);
		/* The class of an object's own size is that class. */
		assert_int_equal(tcm_size_class_of(tcm_size_classes[size_class].object_bytes), size_class);
	}
	/* Classes 1-8 step by 16 bytes; then 160, 192, 224, 256, 320, ... */
	for (unsigned size_class = 1; size_class <= 8; size_class++)
		assert_int_equal(tcm_size_classes[size_class].object_bytes, size_class * 16);
	assert_int_equal(tcm_size_classes[9].object_bytes, 160);
	assert_int_equal(tcm_size_classes[12].object_bytes, 256);
	assert_int_equal(tcm_size_classes[13].object_bytes, 320);
	assert_int_equal(TCM_SIZE_CLASS_COUNT, 53);
	assert_int_equal(tcm_size_classes[52].object_bytes, 256 * 1024);
	assert_int_equal(tcm_size_class_of(TCM_SMALL_MAX_BYTES), 52);
	assert_int_equal(tcm_size_class_of(0), 1);
	assert_int_equal(tcm_size_class_of(1), 1);
}

static void classes_strictly_increase(void **state)
{
	(void)state;
	tcm_size_class_init();
	for (unsigned size_class = 2; size_class < TCM_SIZE_CLASS_COUNT; size_class++)
		if (tcm_size_classes[size_class].object_bytes <= tcm_size_classes[size_class - 1].object_bytes)
			fail_msg("class %u (%u bytes) does not exceed class %u (%u bytes)", size_class,
				 tcm_size_classes[size_class].object_bytes, size_class - 1,
				 tcm_size_classes[size_class - 1].object_bytes);
}

static void batch_and_span_per_class(void **state)
{
	(void)state;
	tcm_size_class_init();
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++) {
		const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
		size_t span_bytes = span_bytes_of(size_class);
		if (info->batch_objects < 2 || info->batch_objects > 32)
			fail_msg("class %u: batch_objects %u outside [2, 32]", size_class, info->batch_objects);
		/* A batch is at most 64 KiB unless the 2-object floor forces more. */
		if (info->batch_objects > 2 && (size_t)info->batch_objects * info->object_bytes > 64 * 1024)
			fail_msg("class %u: a batch of %u x %u bytes exceeds 64 KiB", size_class,
				 info->batch_objects, info->object_bytes);
		if (info->span_pages < 1)
			fail_msg("class %u: span of 0 pages", size_class);
		if (info->objects_per_span < 1)
			fail_msg("class %u: no object fits its span", size_class);
		assert_int_equal(info->objects_per_span, span_bytes / info->object_bytes);
		size_t tail_bytes = span_bytes - (size_t)info->objects_per_span * info->object_bytes;
		if (tail_bytes * 8 > span_bytes)
			fail_msg("class %u: span of %zu bytes wastes %zu (> 1/8)", size_class, span_bytes, tail_bytes);
	}
}

static void init_is_idempotent(void **state)
{
	(void)state;
	tcm_size_class_init();
	static struct tcm_size_class_info first[TCM_SIZE_CLASS_COUNT];
	memcpy(first, tcm_size_classes, sizeof(first));
	tcm_size_class_init();
	assert_memory_equal(first, tcm_size_classes, sizeof(first));
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(every_size_gets_tightest_class),
	cmocka_unit_test(table_matches_formula),
	cmocka_unit_test(classes_strictly_increase),
	cmocka_unit_test(batch_and_span_per_class),
	cmocka_unit_test(init_is_idempotent),
};

UNIT_MAIN("size_class", tests)
