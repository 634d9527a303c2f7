// Padded rows of an image plane, shared by the direct convolution kernels (convolution_amx.c,
// convolution_weight_gradient.c): zero padding, or reflect padding (PyTorch's 'reflect': index -1
// reads 1).
#ifndef WORKBENCH_PADDING_H
#define WORKBENCH_PADDING_H

#include <stddef.h>
#include <string.h>

// Row r of the padded image for padding `pad` (0 ≤ r < height + 2·pad): the source row, or -1 for zeros.
static inline int padded_source(int r, int size, int pad, int reflect) {
    int s = r - pad;
    if (s >= 0 && s < size) return s;
    if (!reflect) return -1;
    return s < 0 ? -s : 2 * size - 2 - s;
}

// One padded line of `plane`'s row `sy` (-1: zeros): width + 2·pad values.
static inline void padded_line(const float *plane, int sy, int width, int pad, int reflect, float *line) {
    if (sy < 0) {
        memset(line, 0, sizeof(float) * (size_t)(width + 2 * pad));
        return;
    }
    const float *row = plane + (size_t)sy * width;
    memcpy(line + pad, row, sizeof(float) * (size_t)width);
    for (int x = 0; x < pad; x++) {
        int left = padded_source(x, width, pad, reflect), right = padded_source(width + pad + x, width, pad, reflect);
        line[x] = left < 0 ? 0 : row[left];
        line[width + pad + x] = right < 0 ? 0 : row[right];
    }
}

#endif
