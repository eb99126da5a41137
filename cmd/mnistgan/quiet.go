//go:build linux

package main

// libtensorflow logs INFO lines on stderr while it is loaded, before any Go
// code runs ("oneDNN custom operations are on", the CPU feature notice), and
// fixes its log level then, from TF_CPP_MIN_LOG_LEVEL. Setting the variable
// from Go is too late, and every error message of mnistgan would follow two
// to five lines of TensorFlow's. So, when the user has not set it, the
// process re-executes itself with TF_CPP_MIN_LOG_LEVEL=2 (warnings and
// errors are still shown) from a .preinit_array function: the dynamic loader
// calls it after mapping the libraries but before running any of their
// initialisers, so no TensorFlow code runs twice and the pid stays the same.
// Set TF_CPP_MIN_LOG_LEVEL=0 to see TensorFlow's INFO lines. (Two lines that
// TensorFlow's MLIR pass logs through its private copy of Abseil at the first
// Session.Run ignore the variable; nothing outside libtensorflow reaches them.)

/*
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

static const char mnistgan_log_level[] = "TF_CPP_MIN_LOG_LEVEL=2";

static void mnistgan_quiet_tensorflow(int argc, char **argv, char **envp) {
	size_t n = 0;
	(void)argc;
	// AT_BASE is 0 when the dynamic loader was itself run as the program
	// (ld.so bin/mnistgan ...): /proc/self/exe is then the loader.
	if (envp == NULL || argv == NULL || getauxval(AT_BASE) == 0) {
		return;
	}
	for (; envp[n] != NULL; n++) {
		if (strncmp(envp[n], "TF_CPP_MIN_LOG_LEVEL=", 21) == 0) {
			return; // the user's choice, or already re-executed
		}
	}
	char *env[n + 2];
	memcpy(env, envp, n * sizeof(char *));
	env[n] = (char *)mnistgan_log_level;
	env[n + 1] = NULL;
	execve("/proc/self/exe", argv, env);
	// No /proc: carry on, with TensorFlow's INFO lines.
}

__attribute__((section(".preinit_array"), used))
static void (*mnistgan_preinit)(int, char **, char **) = mnistgan_quiet_tensorflow;
*/
import "C"
