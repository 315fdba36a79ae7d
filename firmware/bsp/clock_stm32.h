/* What the clock_<family>.c files share: the bounded wait on a ready flag. */
#ifndef RESILINET_CLOCK_STM32_H
#define RESILINET_CLOCK_STM32_H

#include <stdint.h>

/* Polls of a ready flag before giving up.  Each poll is a peripheral read (>= 4
 * cycles), so at the slowest reset clock (4 MHz MSI) 200000 polls last >= 0.2 s:
 * far beyond the longest start-up a reference manual gives (HSE ~2 ms, PLL lock
 * ~0.2 ms, voltage scaling and over-drive tens of us).  Under QEMU, where RCC is
 * an unimplemented device that reads 0, it costs ~1 M instructions (~ms) once. */
#ifndef BOARD_CLOCK_READY_LOOPS
#define BOARD_CLOCK_READY_LOOPS 200000u
#endif

/* 1 once (*reg & mask) == value, 0 if that did not happen within the bound. */
static inline int clock_wait(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    for (uint32_t i = 0; i < BOARD_CLOCK_READY_LOOPS; i++) {
        if ((*reg & mask) == value) {
            return 1;
        }
    }
    return 0;
}

#endif
