package runtime

// BaseEnv is what every worker's environment starts with, whatever the
// function: the function's own variables and its identity come on top,
// at start or with Init. taskDir is where the worker sees the code.
func BaseEnv(taskDir string) []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=/tmp",
		"LANG=C.UTF-8",
		"TZ=UTC",
		"PYTHONUNBUFFERED=1",
		"PYTHONDONTWRITEBYTECODE=1",
		"LAMBDA_TASK_ROOT=" + taskDir,
	}
}
