/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The BPF target has no asm/ directory of its own, and the host's
 * (/usr/include/<triplet>/asm) differs by machine. The uapi headers only need
 * fixed-width integer types from here, which are the same on every 64-bit
 * architecture, so this forwards to the generic definitions and the object
 * builds the same on any host.
 */
#include <asm-generic/types.h>
