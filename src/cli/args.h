/* args: the small flag parser the subcommands share. Flags are spelled as vLLM spells them
 * and accept both "--name value" and "--name=value". Main thread only. */
#ifndef VELA_CLI_ARGS_H
#define VELA_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>

/* If argv[*i] is the flag `name`, stores its value (borrowed from argv), advances *i past
 * it and returns 1; returns 0 when argv[*i] is another flag; -1 (message printed) when the
 * value is missing. */
int args_value(int argc, char **argv, int *i, const char *name, const char **out);
/* Same for a boolean switch without a value ("--config-only"). */
bool args_switch(char **argv, int i, const char *name);
/* Parses a whole decimal integer in [lo, hi]; prints an error naming flag and returns -1. */
int args_int(const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out);
int args_double(const char *flag, const char *s, double lo, double hi, double *out);

#endif
