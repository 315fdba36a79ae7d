/* See testmodel.h. */
#include "testmodel.h"

#include <stddef.h>

#ifdef TESTMODEL_BLOAT_FLASH
/* Only for the fit-check test: constants that cannot fit the board's flash. */
static const int8_t bloat[TESTMODEL_BLOAT_FLASH] = {1};
#endif
#ifdef TESTMODEL_BLOAT_RAM
static int8_t bloat_ram[TESTMODEL_BLOAT_RAM];
#endif

int32_t testmodel_invoke(const int8_t *const in[], int8_t *const out[])
{
    if (in == NULL || out == NULL || in[0] == NULL || in[1] == NULL || out[0] == NULL ||
        out[1] == NULL) {
        return -1;
    }
#ifdef TESTMODEL_FAULT
    if (in[0][0] == 0x55) { /* only for the fault test: an undefined instruction */
        __asm volatile("udf #0");
    }
#endif
    for (int32_t i = 0; i < TESTMODEL_BYTES; i++) {
        int32_t v = (in[0][i] - TESTMODEL_ZP_IN0) + (in[1][i] - TESTMODEL_ZP_IN1) + TESTMODEL_ZP_OUT0;
        out[0][i] = (int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
        out[1][i] = in[0][TESTMODEL_BYTES - 1 - i];
    }
    /* Fixed work (an LCG), kept by the volatile store, independent of the data. */
    uint32_t x = 1u;
    for (int32_t k = 0; k < TESTMODEL_WORK; k++) {
        x = x * 1664525u + 1013904223u;
    }
    volatile uint32_t sink = x;
    (void)sink;
#ifdef TESTMODEL_BLOAT_FLASH
    (void)*(const volatile int8_t *)&bloat[(uint8_t)in[0][0]];
#endif
#ifdef TESTMODEL_BLOAT_RAM
    *(volatile int8_t *)&bloat_ram[(uint8_t)in[0][0]] = in[1][0];
#endif
    return 0;
}
