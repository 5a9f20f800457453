/* cmd_inspect: placeholder until the module behind it lands. */
#include "cli/commands.h"

#include <stdio.h>

int cmd_inspect(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "error: %s is not built yet\n", argv[0]);
    return 1;
}
