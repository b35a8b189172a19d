// Package steps turns a vmdb2 spec into a build: it reads the YAML as
// vmdb2 does (Load), renders the templates and matches every step to its
// kind with its keys checked (NewPlan), refuses before anything is written
// what the build would fail on later (Plan.Preflight, one simulation of the
// tag table, the partitions and the host), and runs the steps and their
// teardowns (Build.Run). Each kind lives in its own file and is listed in
// one table (DefaultRegistry); the host programs a build may run and their
// Debian packages are another (hosttools.go).
package steps
