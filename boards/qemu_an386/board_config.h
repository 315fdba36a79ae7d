/* QEMU mps2-an386 (Arm MPS2 FPGA image with a Cortex-M4, DSP + FPU).
 * Data: boards/qemu_an386.toml.  CMSDK APB UART0 at 0x40004000 = QEMU serial
 * index 0; its RX interrupt is IRQ 0 (TX is IRQ 1, not used). */
#ifndef BOARD_CONFIG_H
#define BOARD_CONFIG_H

#define BOARD_NAME "qemu_an386"
#define BOARD_EMULATED 1
#define BOARD_CPU_HZ 25000000u    /* MPS2 FPGA core clock (SysTick runs from it) */
#define BOARD_NUM_IRQS 32u

#define BOARD_UART_CMSDK 1
#define BOARD_UART_BASE 0x40004000u /* UART0 */
#define BOARD_UART_IRQ 0u           /* UART0 RX */
#define BOARD_UART_PCLK_HZ 25000000u /* BAUDDIV = 217 (QEMU wants >= 16) */

#endif
