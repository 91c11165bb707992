/* The torsieve subcommands. Each takes its own argv (argv[0] is the
 * subcommand's name) and returns the process exit code:
 * 0 success, 1 an internal or output failure, 2 bad usage or bad input. */
#ifndef TORSIEVE_COMMANDS_H
#define TORSIEVE_COMMANDS_H

#define TS_EXIT_OK      0
#define TS_EXIT_FAILURE 1
#define TS_EXIT_USAGE   2

int ts_cmd_replay(int argc, char **argv);
int ts_cmd_check(int argc, char **argv);
int ts_cmd_run(int argc, char **argv);
int ts_cmd_rules(int argc, char **argv);

#endif
