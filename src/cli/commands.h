/* commands: the subcommands of the vela binary, one file each under src/cli/. Each takes
 * the arguments after its name (argv[0] is the subcommand) and returns the process exit
 * code: 0 success, 1 failure (message on stderr), 2 usage error. Main thread only. */
#ifndef VELA_CLI_COMMANDS_H
#define VELA_CLI_COMMANDS_H

int cmd_inspect(int argc, char **argv);
int cmd_make_model(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_chat_template(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
