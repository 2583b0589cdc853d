// Package budget evaluates a config under a time and memory budget, so that
// hostile CUE in a pull request or a pushed commit cannot take the agent
// down. CUE has no evaluation limits of its own: a few lines that double a
// string or comprehend list.Range(0, 50000000, 1) grow past gigabytes in
// seconds, and a byte limit on the input does not bound them.
//
// An Evaluator validates files with load.Files. When the files hold no CUE
// code (only YAML and JSON, which are data), it does so in the calling
// process. Otherwise it runs load.Files in a child process of the same
// executable: the files go to the child's stdin, the result comes back as
// JSON on its stdout, and the child runs
//
//   - under a wall-clock deadline (Budget.Timeout), after which its process
//     group is killed;
//   - under an address-space limit (RLIMIT_AS, set by the child on itself
//     before it reads any input) of its size at start plus Budget.Memory,
//     with the Go memory limit set to Budget.Memory so that the collector
//     works before the hard limit is reached;
//   - with a cap on the output it may write, and an environment that holds
//     nothing of the parent's (no tokens).
//
// A budget that runs out is a diagnostic on each .cue file (ExceededError),
// so it is reported like any other invalid config: `agent validate` exits 1,
// a pushed commit is recorded rejected, a pull request's check fails.
//
// Every program that uses an Evaluator must call ChildMain first thing in
// main (and test binaries in TestMain): the child is the program itself,
// started with an environment variable that ChildMain recognizes.
package budget
