/* SPDX-License-Identifier: GPL-2.0 */
/* See types.h in this directory for why this forwards to asm-generic. */
#include <asm-generic/posix_types.h>
