// PNG and JPEG through libpng and libjpeg, behind functions that never longjmp into Swift:
// both libraries report fatal errors by longjmp, so each call sets its own jump target here
// and turns a corrupt file into a return code and a message.
#ifndef WORKBENCH_IMAGE_CODECS_H
#define WORKBENCH_IMAGE_CODECS_H

#include <stddef.h>

typedef struct {
    int width;
    int height;
    int channels;          // 1 (gray or palette indices), 2 (gray+alpha), 3 (RGB), 4 (RGBA)
    int was_palette;       // the file stored a palette (PNG colour type 3)
    int orientation;       // JPEG EXIF orientation 1..8 (1 when absent); always 1 for PNG
    unsigned char *pixels; // row-major, interleaved, 8 bits per sample; free with wb_free
} wb_image;

typedef struct {
    unsigned char *data;
    size_t size;
    size_t capacity;
} wb_buffer;

enum { WB_PNG_COLOURS = 0, WB_PNG_INDICES = 1 };

/// Decodes a PNG held in memory. mode WB_PNG_COLOURS expands to 8-bit gray/GA/RGB/RGBA;
/// WB_PNG_INDICES returns the stored sample values of a palette or gray image (class indices).
/// Returns 0 on success, otherwise writes a message into err.
/// Decoders refuse images whose pixels would take more than this (checked against the header).
#define WB_MAX_DECODED_BYTES ((unsigned long long)1 << 28)

int wb_png_decode(const unsigned char *data, size_t size, int mode, wb_image *out, char *err, size_t errlen);

/// Encodes 8-bit pixels as PNG. With a palette (palette_count RGB triplets), channels must be 1.
int wb_png_encode(const unsigned char *pixels, int width, int height, int channels,
                  const unsigned char *palette, int palette_count, wb_buffer *out, char *err, size_t errlen);

/// Decodes a JPEG held in memory into gray (1 channel) or RGB (3 channels); CMYK/YCCK become RGB.
int wb_jpeg_decode(const unsigned char *data, size_t size, wb_image *out, char *err, size_t errlen);

/// Encodes 8-bit gray (1), RGB (3) or Adobe-style CMYK (4) pixels as baseline JPEG.
int wb_jpeg_encode(const unsigned char *pixels, int width, int height, int channels, int quality,
                   wb_buffer *out, char *err, size_t errlen);

void wb_free(void *pointer);

#endif

#ifndef WORKBENCH_GZIP_H
#define WORKBENCH_GZIP_H
/// Inflates a gzip stream held in memory (zlib); with limit > 0, stops after the first `limit`
/// bytes (a prefix, so a header can be read before committing memory). Returns 0 on success.
int wb_gunzip(const unsigned char *data, size_t size, size_t limit, wb_buffer *out, char *err, size_t errlen);
#endif
