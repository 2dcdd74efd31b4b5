#ifndef ABE_CRC32C_HARDWARE_H
#define ABE_CRC32C_HARDWARE_H
// CRC-32C with the processor's own instruction (SSE 4.2 `crc32` on x86-64, the CRC extension
// on arm64): the file spool checksums every record it writes and reads, and the instruction is
// several times faster than the table-driven loop. Swift has no portable way to reach it.
#include <stddef.h>
#include <stdint.h>

// 1 when abe_crc32c_hardware_update may be called on this processor, else 0.
int abe_crc32c_hardware_available(void);

// Advances the raw CRC-32C register `crc` (no initial or final inversion) over `count` bytes at
// `bytes`, which need no alignment. Only after abe_crc32c_hardware_available returned 1.
uint32_t abe_crc32c_hardware_update(uint32_t crc, const void *bytes, size_t count);

#endif
