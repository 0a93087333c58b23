// SPDX-License-Identifier: GPL-2.0
/* Production builds: no deliberate faults (see km_test.c). */
#include "km_int.h"

void km__test_fault(unsigned int kind)
{
}
