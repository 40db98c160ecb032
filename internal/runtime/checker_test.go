package runtime_test

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// TestCheckerLimitsAndConfines: a Checker runs no more checks at once than
// its slots, hands every checker process to Confine before it reads its
// sources, releases it afterwards, and reports a checker killed under its
// confinement (as the OOM killer kills) as ErrCheckKilled.
func TestCheckerLimitsAndConfines(t *testing.T) {
	in := interpreters(t)
	var (
		mu                      sync.Mutex
		running, most, released int
	)
	c := runtime.NewChecker(in, 1, func(pid int) (func(), error) {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		return func() {
			mu.Lock()
			running--
			released++
			mu.Unlock()
		}, nil
	})
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt := []string{runtime.Python, runtime.NodeJS}[i%2]
			src := map[string]string{"main.py": "def handler(e, c):\n    return 1\n", "index.js": "exports.handler = async () => 1;\n"}
			errs[i] = c.Check(context.Background(), rt, src)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("check %d: %v", i, err)
		}
	}
	if most != 1 || released != 4 {
		t.Errorf("at most %d checks at once (want 1), %d released (want 4)", most, released)
	}

	oom := runtime.NewChecker(in, 2, func(pid int) (func(), error) {
		return func() {}, syscall.Kill(pid, syscall.SIGKILL)
	})
	err := oom.Check(context.Background(), runtime.Python, map[string]string{"main.py": "x = 1\n"})
	if !errors.Is(err, runtime.ErrCheckKilled) {
		t.Errorf("a checker killed under confinement: %v, want ErrCheckKilled", err)
	}

}
