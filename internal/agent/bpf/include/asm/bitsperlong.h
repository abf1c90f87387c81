/* SPDX-License-Identifier: GPL-2.0 */
/*
 * See types.h in this directory for why this forwards to asm-generic. BPF is
 * a 64-bit target; older asm-generic headers would otherwise assume 32.
 */
#ifndef __BITS_PER_LONG
#define __BITS_PER_LONG 64
#endif
#include <asm-generic/bitsperlong.h>
