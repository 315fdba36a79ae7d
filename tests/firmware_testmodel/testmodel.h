/*
 * A hand-written stand-in for a generated node model, with outputs the tests
 * can compute exactly (tests/test_firmware.py):
 *   in[0], in[1]: 16 int8 each, zero points TESTMODEL_ZP_IN0 / TESTMODEL_ZP_IN1, same scale
 *   out[0][i] = saturate_int8((in0[i] - ZP_IN0) + (in1[i] - ZP_IN1) + ZP_OUT0)
 *               (a quantized ADD of two tensors that share the output's scale)
 *   out[1][i] = in0[15 - i]
 * Plus TESTMODEL_WORK iterations of a fixed busy loop whose result is
 * discarded, so that one inference spans several SysTick periods (cycle-count
 * tests).  Same signature as codegen's generated <name>_invoke().
 * Test-only build options: TESTMODEL_FAULT (in0[0] == 0x55 executes an undefined
 * instruction), TESTMODEL_BLOAT_FLASH / TESTMODEL_BLOAT_RAM (bytes of dead weight).
 */
#ifndef TESTMODEL_H
#define TESTMODEL_H

#include <stdint.h>

#define TESTMODEL_NUM_INPUTS 2
#define TESTMODEL_NUM_OUTPUTS 2
#define TESTMODEL_BYTES 16
#define TESTMODEL_ZP_IN0 (-3)
#define TESTMODEL_ZP_IN1 5
#define TESTMODEL_ZP_OUT0 2
#define TESTMODEL_ZP_OUT1 TESTMODEL_ZP_IN0
#define TESTMODEL_ARENA_BYTES 0

#ifndef TESTMODEL_WORK
#define TESTMODEL_WORK 200000
#endif

int32_t testmodel_invoke(const int8_t *const in[], int8_t *const out[]);

#endif
