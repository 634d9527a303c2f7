#include "image_codecs.h"
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *err;
    size_t errlen;
} png_error_context;

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t offset;
} png_memory_reader;

static void on_png_error(png_structp png, png_const_charp message) {
    png_error_context *context = (png_error_context *)png_get_error_ptr(png);
    if (context && context->err && context->errlen) {
        snprintf(context->err, context->errlen, "%s", message);
    }
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static void read_from_memory(png_structp png, png_bytep destination, png_size_t length) {
    png_memory_reader *reader = (png_memory_reader *)png_get_io_ptr(png);
    if (reader->offset + length > reader->size) {
        png_error(png, "file ends before the image data does (truncated PNG)");
    }
    memcpy(destination, reader->data + reader->offset, length);
    reader->offset += length;
}

int wb_png_decode(const unsigned char *data, size_t size, int mode, wb_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    out->orientation = 1;
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        snprintf(err, errlen, "not a PNG file (bad signature)");
        return 1;
    }
    png_error_context context = {err, errlen};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &context, on_png_error, on_png_warning);
    if (!png) {
        snprintf(err, errlen, "libpng could not allocate a reader");
        return 1;
    }
    png_infop info = png_create_info_struct(png);
    volatile png_bytep pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        // Destroying sets info to NULL, so decide which message stands before that.
        int no_info = info == NULL;
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        free(pixels);
        free(rows);
        if (no_info) snprintf(err, errlen, "libpng could not allocate image info");
        return 1;
    }
    png_memory_reader reader = {data, size, 0};
    png_set_read_fn(png, &reader, read_from_memory);
    png_read_info(png, info);

    png_uint_32 width = png_get_image_width(png, info);
    png_uint_32 height = png_get_image_height(png, info);
    if ((unsigned long long)width * height * 4 > WB_MAX_DECODED_BYTES) {
        png_error(png, "the header declares an image too large to decode here (more than 256 MB of pixels)");
    }
    int bit_depth = png_get_bit_depth(png, info);
    int colour_type = png_get_color_type(png, info);
    out->was_palette = colour_type == PNG_COLOR_TYPE_PALETTE;

    if (mode == WB_PNG_INDICES) {
        if (colour_type != PNG_COLOR_TYPE_PALETTE && colour_type != PNG_COLOR_TYPE_GRAY) {
            png_error(png, "a label map must be a palette or grayscale PNG whose values are class indices");
        }
        if (bit_depth == 16) png_error(png, "16-bit grayscale PNGs are not label maps");
        if (bit_depth < 8) png_set_packing(png);
    } else {
        if (colour_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
        if (colour_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
        if (bit_depth == 16) png_set_strip_16(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if (row_bytes != (size_t)width * (size_t)channels) png_error(png, "unsupported PNG sample layout");

    pixels = (png_bytep)malloc(row_bytes * height);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (!pixels || !rows) png_error(png, "out of memory decoding PNG");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);

    out->width = (int)width;
    out->height = (int)height;
    out->channels = channels;
    out->pixels = pixels;
    return 0;
}

static void write_to_buffer(png_structp png, png_bytep source, png_size_t length) {
    wb_buffer *buffer = (wb_buffer *)png_get_io_ptr(png);
    if (buffer->size + length > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 4096;
        while (capacity < buffer->size + length) capacity *= 2;
        unsigned char *grown = (unsigned char *)realloc(buffer->data, capacity);
        if (!grown) png_error(png, "out of memory encoding PNG");
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->size, source, length);
    buffer->size += length;
}

static void flush_nothing(png_structp png) { (void)png; }

int wb_png_encode(const unsigned char *pixels, int width, int height, int channels,
                  const unsigned char *palette, int palette_count, wb_buffer *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    int colour_type;
    if (palette) {
        if (channels != 1 || palette_count < 1 || palette_count > 256) {
            snprintf(err, errlen, "a palette PNG needs one channel and 1...256 colours");
            return 1;
        }
        colour_type = PNG_COLOR_TYPE_PALETTE;
    } else if (channels == 1) {
        colour_type = PNG_COLOR_TYPE_GRAY;
    } else if (channels == 2) {
        colour_type = PNG_COLOR_TYPE_GRAY_ALPHA;
    } else if (channels == 3) {
        colour_type = PNG_COLOR_TYPE_RGB;
    } else if (channels == 4) {
        colour_type = PNG_COLOR_TYPE_RGB_ALPHA;
    } else {
        snprintf(err, errlen, "PNG needs 1 to 4 channels, got %d", channels);
        return 1;
    }
    png_error_context context = {err, errlen};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &context, on_png_error, on_png_warning);
    if (!png) {
        snprintf(err, errlen, "libpng could not allocate a writer");
        return 1;
    }
    png_infop info = png_create_info_struct(png);
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : NULL);
        free(rows);
        free(out->data);
        memset(out, 0, sizeof(*out));
        if (!info) snprintf(err, errlen, "libpng could not allocate image info");
        return 1;
    }
    png_set_write_fn(png, out, write_to_buffer, flush_nothing);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, colour_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette) {
        png_color colours[256];
        for (int i = 0; i < palette_count; i++) {
            colours[i].red = palette[3 * i];
            colours[i].green = palette[3 * i + 1];
            colours[i].blue = palette[3 * i + 2];
        }
        png_set_PLTE(png, info, colours, palette_count);
    }
    png_write_info(png, info);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)height);
    if (!rows) png_error(png, "out of memory encoding PNG");
    for (int y = 0; y < height; y++) rows[y] = (png_bytep)pixels + (size_t)y * (size_t)width * (size_t)channels;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return 0;
}

void wb_free(void *pointer) { free(pointer); }
