package runtime_test

import (
	"testing"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// TestMaxRSSReported checks that every result frame carries the worker's
// peak resident set size, that it follows what the handler allocated, and
// that it agrees with the kernel's high-water mark for the process.
func TestMaxRSSReported(t *testing.T) {
	files := map[string]map[string]string{
		runtime.Python: {"main.py": `
keep = []

def handler(event, context):
    if event.get("fail"):
        raise ValueError("no")
    keep.append(b"x" * (event["mib"] << 20))  # bytes are written: resident
    return len(keep)
`},
		runtime.NodeJS: {"index.js": `
const keep = [];
exports.handler = async (event) => {
  if (event.fail) throw new Error('no');
  keep.push(Buffer.alloc(event.mib << 20, 1)); // filled: resident
  return keep.length;
};
`},
	}
	handlers := map[string]string{runtime.Python: "main.handler", runtime.NodeJS: "index.handler"}
	const mib = 64
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			w := startWorker(t, rt, files[rt], handlers[rt]).mustLoad()
			small := w.invoke(map[string]int{"mib": 0})
			if small.Error != nil || small.MaxRSSKiB <= 0 {
				t.Fatalf("first call: maxRssKiB %d, error %+v", small.MaxRSSKiB, small.Error)
			}
			big := w.invoke(map[string]int{"mib": mib})
			if big.Error != nil {
				t.Fatalf("allocating call: %+v", big.Error)
			}
			if grew := big.MaxRSSKiB - small.MaxRSSKiB; grew < mib*1024*9/10 {
				t.Errorf("maxRssKiB grew by %d KiB after allocating %d MiB (from %d to %d)", grew, mib, small.MaxRSSKiB, big.MaxRSSKiB)
			}
			if hwm := int64(w.status("VmHWM")); big.MaxRSSKiB > hwm || big.MaxRSSKiB < hwm*9/10 {
				t.Errorf("maxRssKiB %d, kernel high-water mark %d KiB", big.MaxRSSKiB, hwm)
			}
			failed := w.invoke(map[string]bool{"fail": true})
			if failed.Error == nil || failed.MaxRSSKiB < big.MaxRSSKiB {
				t.Errorf("error frame: maxRssKiB %d (before %d), error %+v", failed.MaxRSSKiB, big.MaxRSSKiB, failed.Error)
			}
		})
	}
}
