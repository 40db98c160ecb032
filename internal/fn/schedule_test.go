package fn_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// withSchedules is a valid function with the schedules decoded from js,
// as the API decodes them.
func withSchedules(t *testing.T, js string) *fn.Function {
	t.Helper()
	f := &fn.Function{Name: "tick", Runtime: "python", Code: "def handler(e, c): return 1"}
	if err := json.Unmarshal([]byte(js), &f.Schedules); err != nil {
		t.Fatalf("decode %s: %v", js, err)
	}
	return f
}

func TestNormalizeSchedules(t *testing.T) {
	for _, tc := range []struct {
		name, js string
		want     func(s []fn.Schedule) bool
	}{
		{"five fields", `[{"name":"a","cron":" */5  * * * * "}]`, func(s []fn.Schedule) bool { return s[0].Cron == "*/5 * * * *" }},
		{"six fields", `[{"name":"a","cron":"*/10 * * * * *"}]`, nil},
		{"macro", `[{"name":"a","cron":"@hourly"}]`, nil},
		{"rate", `[{"name":"a","rate":"5m"}]`, nil},
		{"zone", `[{"name":"a","cron":"0 9 * * MON-FRI","timezone":"Europe/Paris"}]`, nil},
		{"catch up false", `[{"name":"a","rate":"1h","catchUp":false}]`, func(s []fn.Schedule) bool { return s[0].CatchUp == fn.CatchUpNone }},
		{"catch up latest", `[{"name":"a","rate":"1h","catchUp":"Latest"}]`, func(s []fn.Schedule) bool { return s[0].CatchUp == fn.CatchUpLatest }},
		{"catch up unset", `[{"name":"a","rate":"1h"}]`, func(s []fn.Schedule) bool { return s[0].CatchUp == "" }},
		{"event compacted", `[{"name":"a","rate":"1h","event":{ "k" : [1, 2] }}]`, func(s []fn.Schedule) bool { return string(s[0].Event) == `{"k":[1,2]}` }},
		{"null event", `[{"name":"a","rate":"1h","event":null}]`, func(s []fn.Schedule) bool { return s[0].Event == nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := withSchedules(t, tc.js)
			if err := f.Normalize(defaults); err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && !tc.want(f.Schedules) {
				t.Fatalf("normalized: %+v", f.Schedules)
			}
		})
	}
}

func TestNormalizeSchedulesRejects(t *testing.T) {
	bigEvent := `{"k":"` + strings.Repeat("x", fn.MaxScheduleEventBytes) + `"}`
	for _, tc := range []struct{ name, js, field string }{
		{"bad name", `[{"name":"A B","rate":"1m"}]`, "schedules[0].name"},
		{"twice", `[{"name":"a","rate":"1m"},{"name":"a","rate":"2m"}]`, "schedules[1].name"},
		{"neither", `[{"name":"a"}]`, "schedules[0].cron"},
		{"both", `[{"name":"a","cron":"@daily","rate":"1m"}]`, "schedules[0].cron"},
		{"four fields", `[{"name":"a","cron":"* * * *"}]`, "schedules[0].cron"},
		{"seven fields", `[{"name":"a","cron":"* * * * * * *"}]`, "schedules[0].cron"},
		{"minute 60", `[{"name":"a","cron":"60 * * * *"}]`, "schedules[0].cron"},
		{"unknown macro", `[{"name":"a","cron":"@fortnightly"}]`, "schedules[0].cron"},
		{"every", `[{"name":"a","cron":"@every 5m"}]`, "schedules[0].cron"},
		{"zone inline", `[{"name":"a","cron":"CRON_TZ=UTC * * * * *"}]`, "schedules[0].cron"},
		{"never fires", `[{"name":"a","cron":"0 0 30 2 *"}]`, "schedules[0].cron"},
		{"rate not a duration", `[{"name":"a","rate":"5 minutes"}]`, "schedules[0].rate"},
		{"rate too short", `[{"name":"a","rate":"500ms"}]`, "schedules[0].rate"},
		{"rate too long", `[{"name":"a","rate":"745h"}]`, "schedules[0].rate"},
		{"rate fraction", `[{"name":"a","rate":"1.5s"}]`, "schedules[0].rate"},
		{"unknown zone", `[{"name":"a","cron":"@daily","timezone":"Mars/Olympus"}]`, "schedules[0].timezone"},
		{"local zone", `[{"name":"a","cron":"@daily","timezone":"Local"}]`, "schedules[0].timezone"},
		{"event array", `[{"name":"a","rate":"1m","event":[1]}]`, "schedules[0].event"},
		{"event string", `[{"name":"a","rate":"1m","event":"x"}]`, "schedules[0].event"},
		{"event too big", `[{"name":"a","rate":"1m","event":` + bigEvent + `}]`, "schedules[0].event"},
		{"catch up true", `[{"name":"a","rate":"1m","catchUp":true}]`, "schedules[0].catchUp"},
		{"catch up all", `[{"name":"a","rate":"1m","catchUp":"all"}]`, "schedules[0].catchUp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := withSchedules(t, tc.js)
			err := f.Normalize(defaults)
			var fe *fn.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, fn.ErrInvalid) || fe.Field != tc.field {
				t.Fatalf("Normalize = %v, want an error of field %s", err, tc.field)
			}
		})
	}
}

func TestCatchUpJSON(t *testing.T) {
	var s fn.Schedule
	if err := json.Unmarshal([]byte(`{"catchUp":false}`), &s); err != nil || s.CatchUp != fn.CatchUpNone {
		t.Fatalf("false: %q %v", s.CatchUp, err)
	}
	b, err := json.Marshal(s)
	if err != nil || !strings.Contains(string(b), `"catchUp":"none"`) {
		t.Fatalf("marshal: %s %v", b, err)
	}
	if err := json.Unmarshal([]byte(`{"catchUp":3}`), &s); err == nil {
		t.Fatal("catchUp 3 decoded")
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestScheduleNext(t *testing.T) {
	for _, tc := range []struct {
		name        string
		s           fn.Schedule
		after, want string
	}{
		{"every second is strictly after", fn.Schedule{Cron: "* * * * * *"}, "2026-03-01T10:00:00Z", "2026-03-01T10:00:01Z"},
		{"every second from a fraction", fn.Schedule{Cron: "* * * * * *"}, "2026-03-01T10:00:00.5Z", "2026-03-01T10:00:01Z"},
		{"five fields", fn.Schedule{Cron: "*/15 * * * *"}, "2026-03-01T10:07:00Z", "2026-03-01T10:15:00Z"},
		{"macro", fn.Schedule{Cron: "@daily"}, "2026-03-01T10:07:00Z", "2026-03-02T00:00:00Z"},
		{"zone", fn.Schedule{Cron: "0 9 * * *", Timezone: "America/New_York"}, "2026-03-01T10:00:00Z", "2026-03-01T14:00:00Z"},
		// New York springs forward on 2026-03-08: 09:00 is then UTC-4.
		{"after spring forward", fn.Schedule{Cron: "0 9 * * *", Timezone: "America/New_York"}, "2026-03-07T15:00:00Z", "2026-03-08T13:00:00Z"},
		// 02:30 does not exist that day; the next one is the day after.
		{"in the gap", fn.Schedule{Cron: "30 2 * * *", Timezone: "America/New_York"}, "2026-03-08T05:00:00Z", "2026-03-09T06:30:00Z"},
		// New York falls back on 2026-11-01: 01:30 comes at 05:30 and 06:30 UTC.
		{"fall back fires once", fn.Schedule{Cron: "30 1 * * *", Timezone: "America/New_York"}, "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"},
		{"fall back before the first", fn.Schedule{Cron: "30 1 * * *", Timezone: "America/New_York"}, "2026-11-01T04:00:00Z", "2026-11-01T05:30:00Z"},
		{"fall back every hour passes", fn.Schedule{Cron: "0 * * * *", Timezone: "America/New_York"}, "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z"},
		{"fall back minutes of hour 1", fn.Schedule{Cron: "*/20 1 * * *", Timezone: "America/New_York"}, "2026-11-01T05:40:00Z", "2026-11-02T06:00:00Z"},
		{"rate on epoch multiples", fn.Schedule{Rate: "7s"}, "1970-01-01T00:00:15Z", "1970-01-01T00:00:21Z"},
		{"rate strictly after", fn.Schedule{Rate: "5m"}, "2026-03-01T10:05:00Z", "2026-03-01T10:10:00Z"},
		{"rate from a fraction", fn.Schedule{Rate: "5m"}, "2026-03-01T10:04:59.9Z", "2026-03-01T10:05:00Z"},
		{"rate ignores the zone", fn.Schedule{Rate: "1h", Timezone: "Asia/Kolkata"}, "2026-03-01T10:04:59Z", "2026-03-01T11:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.s.Next(mustTime(t, tc.after))
			if err != nil {
				t.Fatal(err)
			}
			if want := mustTime(t, tc.want); !got.Equal(want) {
				t.Fatalf("Next(%s) = %s, want %s", tc.after, got.UTC().Format(time.RFC3339Nano), tc.want)
			}
		})
	}
	if _, err := (&fn.Schedule{Cron: "nope"}).Next(time.Now()); !errors.Is(err, fn.ErrInvalid) {
		t.Fatalf("Next of a bad cron: %v", err)
	}
}
