#include "image_codecs.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int wb_gunzip(const unsigned char *data, size_t size, size_t limit, wb_buffer *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    z_stream stream;
    memset(&stream, 0, sizeof(stream));
    if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {
        snprintf(err, errlen, "zlib could not start");
        return 1;
    }
    size_t capacity = size * 4 + 1024;
    if (limit > 0 && capacity > limit) capacity = limit;
    unsigned char *buffer = (unsigned char *)malloc(capacity);
    if (!buffer) {
        inflateEnd(&stream);
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    stream.next_in = (unsigned char *)data;
    stream.avail_in = (uInt)size;
    int status;
    do {
        if (limit > 0 && stream.total_out >= limit) {
            // The caller asked for a prefix only: stop here.
            status = Z_STREAM_END;
            break;
        }
        if (stream.total_out == capacity) {
            capacity *= 2;
            if (limit > 0 && capacity > limit) capacity = limit;
            unsigned char *grown = (unsigned char *)realloc(buffer, capacity);
            if (!grown) {
                free(buffer);
                inflateEnd(&stream);
                snprintf(err, errlen, "out of memory");
                return 1;
            }
            buffer = grown;
        }
        stream.next_out = buffer + stream.total_out;
        stream.avail_out = (uInt)(capacity - stream.total_out);
        status = inflate(&stream, Z_NO_FLUSH);
    } while (status == Z_OK);
    if (status != Z_STREAM_END) {
        snprintf(err, errlen, "%s", status == Z_BUF_ERROR ? "the gzip stream ends early (truncated file)" : (stream.msg ? stream.msg : "corrupt gzip data"));
        free(buffer);
        inflateEnd(&stream);
        return 1;
    }
    out->data = buffer;
    out->size = stream.total_out;
    out->capacity = capacity;
    inflateEnd(&stream);
    return 0;
}
