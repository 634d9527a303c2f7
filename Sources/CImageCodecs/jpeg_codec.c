#include "image_codecs.h"
#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char *err;
    size_t errlen;
} jpeg_error_context;

static void on_jpeg_error(j_common_ptr info) {
    jpeg_error_context *context = (jpeg_error_context *)info->err;
    char message[JMSG_LENGTH_MAX];
    (*info->err->format_message)(info, message);
    if (context->err && context->errlen) snprintf(context->err, context->errlen, "%s", message);
    longjmp(context->jump, 1);
}

// Warnings are ignored (many real files carry harmless "extraneous bytes" notes), except a
// premature end of data: libjpeg would pad a truncated file with gray, which must not pass as an image.
static void on_jpeg_message(j_common_ptr info, int level) {
    if (level == -1 && info->err->msg_code == JWRN_JPEG_EOF) on_jpeg_error(info);
}

static unsigned read_u16(const unsigned char *p, int little) {
    return little ? (unsigned)(p[0] | (p[1] << 8)) : (unsigned)((p[0] << 8) | p[1]);
}

static unsigned long read_u32(const unsigned char *p, int little) {
    return little ? ((unsigned long)p[0] | ((unsigned long)p[1] << 8) | ((unsigned long)p[2] << 16) | ((unsigned long)p[3] << 24))
                  : (((unsigned long)p[0] << 24) | ((unsigned long)p[1] << 16) | ((unsigned long)p[2] << 8) | (unsigned long)p[3]);
}

// The orientation tag (0x0112) of the first IFD of an APP1 "Exif" segment, or 1.
static int exif_orientation(const unsigned char *data, unsigned length) {
    if (length < 14 || memcmp(data, "Exif\0\0", 6) != 0) return 1;
    const unsigned char *tiff = data + 6;
    unsigned size = length - 6;
    int little;
    if (tiff[0] == 'I' && tiff[1] == 'I') little = 1;
    else if (tiff[0] == 'M' && tiff[1] == 'M') little = 0;
    else return 1;
    unsigned long ifd = read_u32(tiff + 4, little);
    if (ifd + 2 > size) return 1;
    unsigned count = read_u16(tiff + ifd, little);
    for (unsigned i = 0; i < count; i++) {
        unsigned long entry = ifd + 2 + 12ul * i;
        if (entry + 12 > size) return 1;
        if (read_u16(tiff + entry, little) == 0x0112) {
            unsigned value = read_u16(tiff + entry + 8, little);
            return (value >= 1 && value <= 8) ? (int)value : 1;
        }
    }
    return 1;
}

int wb_jpeg_decode(const unsigned char *data, size_t size, wb_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    out->orientation = 1;
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8) {
        snprintf(err, errlen, "not a JPEG file (no start-of-image marker)");
        return 1;
    }
    struct jpeg_decompress_struct info;
    jpeg_error_context context;
    info.err = jpeg_std_error(&context.manager);
    context.manager.error_exit = on_jpeg_error;
    context.manager.emit_message = on_jpeg_message;
    context.err = err;
    context.errlen = errlen;
    unsigned char *volatile pixels = NULL;
    unsigned char *volatile scratch = NULL;
    if (setjmp(context.jump)) {
        jpeg_destroy_decompress(&info);
        free(pixels);
        free(scratch);
        return 1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_save_markers(&info, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&info, TRUE);
    for (jpeg_saved_marker_ptr marker = info.marker_list; marker; marker = marker->next) {
        if (marker->marker == JPEG_APP0 + 1) {
            out->orientation = exif_orientation(marker->data, marker->data_length);
            break;
        }
    }
    if ((unsigned long long)info.image_width * info.image_height * 4 > WB_MAX_DECODED_BYTES) {
        snprintf(err, errlen, "the header declares a %ux%u image, too large to decode here (more than 256 MB of pixels)",
                 (unsigned)info.image_width, (unsigned)info.image_height);
        longjmp(context.jump, 1);
    }
    int cmyk = info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK;
    int inverted = cmyk && info.saw_Adobe_marker;
    if (cmyk) info.out_color_space = JCS_CMYK;
    else if (info.num_components == 1) info.out_color_space = JCS_GRAYSCALE;
    else info.out_color_space = JCS_RGB;
    jpeg_start_decompress(&info);

    int width = (int)info.output_width, height = (int)info.output_height;
    int channels = cmyk ? 3 : info.output_components;
    int decoded = info.output_components;
    pixels = (unsigned char *)malloc((size_t)width * height * channels);
    scratch = (unsigned char *)malloc((size_t)width * decoded);
    if (!pixels || !scratch) {
        snprintf(err, errlen, "out of memory decoding JPEG");
        longjmp(context.jump, 1);
    }
    while (info.output_scanline < info.output_height) {
        unsigned y = info.output_scanline;
        JSAMPROW row = scratch;
        jpeg_read_scanlines(&info, &row, 1);
        unsigned char *target = pixels + (size_t)y * width * channels;
        if (!cmyk) {
            memcpy(target, scratch, (size_t)width * channels);
            continue;
        }
        for (int x = 0; x < width; x++) {
            // Adobe writes CMYK inverted (0 = full ink); others store ink amounts directly.
            int c = scratch[4 * x], m = scratch[4 * x + 1], yy = scratch[4 * x + 2], k = scratch[4 * x + 3];
            if (!inverted) { c = 255 - c; m = 255 - m; yy = 255 - yy; k = 255 - k; }
            target[3 * x] = (unsigned char)((c * k + 127) / 255);
            target[3 * x + 1] = (unsigned char)((m * k + 127) / 255);
            target[3 * x + 2] = (unsigned char)((yy * k + 127) / 255);
        }
    }
    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    free(scratch);
    out->width = width;
    out->height = height;
    out->channels = channels;
    out->pixels = pixels;
    return 0;
}

int wb_jpeg_encode(const unsigned char *pixels, int width, int height, int channels, int quality,
                   wb_buffer *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    if (channels != 1 && channels != 3 && channels != 4) {
        snprintf(err, errlen, "JPEG needs 1 (gray), 3 (RGB) or 4 (CMYK) channels, got %d", channels);
        return 1;
    }
    struct jpeg_compress_struct info;
    jpeg_error_context context;
    info.err = jpeg_std_error(&context.manager);
    context.manager.error_exit = on_jpeg_error;
    context.manager.emit_message = on_jpeg_message;
    context.err = err;
    context.errlen = errlen;
    unsigned char *volatile buffer = NULL;
    unsigned long length = 0;
    if (setjmp(context.jump)) {
        jpeg_destroy_compress(&info);
        free(buffer);
        return 1;
    }
    jpeg_create_compress(&info);
    unsigned char *target = NULL;
    jpeg_mem_dest(&info, &target, &length);
    info.image_width = (JDIMENSION)width;
    info.image_height = (JDIMENSION)height;
    info.input_components = channels;
    info.in_color_space = channels == 1 ? JCS_GRAYSCALE : (channels == 3 ? JCS_RGB : JCS_CMYK);
    jpeg_set_defaults(&info);
    if (channels == 4) jpeg_set_colorspace(&info, JCS_CMYK);
    jpeg_set_quality(&info, quality, TRUE);
    jpeg_start_compress(&info, TRUE);
    while (info.next_scanline < info.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)info.next_scanline * width * channels);
        jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    buffer = target;
    jpeg_destroy_compress(&info);
    out->data = buffer;
    out->size = length;
    out->capacity = length;
    return 0;
}
