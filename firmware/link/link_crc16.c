/* CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, MSB first, xorout 0).
 *
 * Nibble-table implementation: 32 bytes of table instead of 512 for the
 * byte-wise one, about twice the speed of the bit-wise loop; at UART rates the
 * CRC is nowhere near the bottleneck, flash on small boards may be. */
#include "link_protocol.h"

static const uint16_t crc16_nibble[16] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50A5, 0x60C6, 0x70E7,
    0x8108, 0x9129, 0xA14A, 0xB16B, 0xC18C, 0xD1AD, 0xE1CE, 0xF1EF,
};

uint16_t link_crc16_byte(uint16_t crc, uint8_t byte)
{
    crc = (uint16_t)((crc << 4) ^ crc16_nibble[((crc >> 12) ^ (byte >> 4)) & 0x0Fu]);
    crc = (uint16_t)((crc << 4) ^ crc16_nibble[((crc >> 12) ^ byte) & 0x0Fu]);
    return crc;
}

uint16_t link_crc16_update(uint16_t crc, const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        crc = link_crc16_byte(crc, data[i]);
    }
    return crc;
}
