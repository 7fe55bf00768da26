/* SPDX-License-Identifier: Apache-2.0 */
/* swarmq-consumer: placeholder entry point while the daemon lands. */
#include <stdio.h>
int main(void) {
        fprintf(stderr, "swarmq-consumer: not built yet\n");
        return 1;
}
