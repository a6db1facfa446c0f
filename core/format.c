/* core/format.c - see format.h. Output is always NUL-terminated; text that
 * does not fit is cut. */
#include "format.h"

void tcm_text_init(struct tcm_text *text, char *buffer, size_t capacity)
{
	text->buffer = buffer;
	text->capacity = capacity;
	text->length = 0;
	if (capacity > 0)
		buffer[0] = '\0';
}

static void put_char(struct tcm_text *text, char c)
{
	if (text->length + 1 < text->capacity) {
		text->buffer[text->length++] = c;
		text->buffer[text->length] = '\0';
	}
}

void tcm_text_str(struct tcm_text *text, const char *string)
{
	while (*string != '\0')
		put_char(text, *string++);
}

void tcm_text_bytes(struct tcm_text *text, const char *bytes, size_t length)
{
	for (size_t i = 0; i < length; i++)
		put_char(text, bytes[i]);
}

void tcm_text_u64(struct tcm_text *text, uint64_t value)
{
	char digits[20];
	int count = 0;
	do {
		digits[count++] = (char)('0' + value % 10);
		value /= 10;
	} while (value != 0);
	while (count > 0)
		put_char(text, digits[--count]);
}

void tcm_text_hex(struct tcm_text *text, uint64_t value)
{
	static const char hex_digits[] = "0123456789abcdef";
	tcm_text_str(text, "0x");
	int shift = 60;
	while (shift > 0 && ((value >> shift) & 15) == 0)
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		put_char(text, hex_digits[(value >> shift) & 15]);
}

void tcm_text_fixed1(struct tcm_text *text, uint64_t value, uint64_t divisor)
{
	uint64_t tenths = (value * 10 + divisor / 2) / divisor;
	tcm_text_u64(text, tenths / 10);
	put_char(text, '.');
	put_char(text, (char)('0' + tenths % 10));
}
