#ifndef ABE_CHIREDIS_SHIM_H
#define ABE_CHIREDIS_SHIM_H
// Debian 12's libhiredis-dev (hiredis 0.14.1): the synchronous API only; no TLS, no RESP3.
#include <hiredis/hiredis.h>
#endif
